#!/usr/bin/python3
# Executes one action through a REAPI endpoint with the independent Python
# client of the interop tests (reapi_client.py: grpcio and modules protoc
# made from the published protos), for a test in which it runs inside an
# element's build and talks to the build's remote-apis-socket.
#
# Usage: execute_one.py TARGET GENERATED_MODULES_DIR
#
# Prints one JSON object: {"action": "HASH/SIZE", "output": "<out.txt>"};
# exits non-zero if the action does not execute successfully.

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: execute_one.py TARGET GENERATED_MODULES_DIR\n")
        return 2
    target, generated = argv[1], argv[2]
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.abspath(generated))
    import reapi_client
    from build.bazel.remote.execution.v2 import remote_execution_pb2 as re
    from google.bytestream import bytestream_pb2 as bs
    from google.longrunning import operations_pb2

    client = reapi_client.Client(target, "", re, bs)
    try:
        command = re.Command(
            arguments=["/bin/sh", "-c", "echo executed for python > out.txt"],
            output_paths=["out.txt"],
        )
        command.environment_variables.add(name="PATH", value="/usr/bin:/bin")
        command_bytes = command.SerializeToString()
        root_bytes = re.Directory().SerializeToString()
        action = re.Action(
            command_digest=client.digest(command_bytes),
            input_root_digest=client.digest(root_bytes),
        )
        action_bytes = action.SerializeToString()
        action_digest = client.digest(action_bytes)
        client.upload([command_bytes, root_bytes, action_bytes])

        execute = client.channel.unary_stream(
            "/build.bazel.remote.execution.v2.Execution/Execute",
            request_serializer=re.ExecuteRequest.SerializeToString,
            response_deserializer=operations_pb2.Operation.FromString,
        )
        request = re.ExecuteRequest(instance_name="", action_digest=action_digest)
        last = None
        for operation in execute(request, timeout=reapi_client.CALL_TIMEOUT):
            last = operation
        if last is None or not last.done:
            raise RuntimeError("Execute ended without a finished operation")
        if last.HasField("error"):
            raise RuntimeError("Execute failed: %s" % last.error)
        response = re.ExecuteResponse()
        last.response.Unpack(response)
        if response.status.code != 0 or response.result.exit_code != 0:
            raise RuntimeError(
                "the action failed: status %s, exit code %d"
                % (response.status, response.result.exit_code)
            )
        files = [f for f in response.result.output_files if f.path == "out.txt"]
        if not files:
            raise RuntimeError("no out.txt among the outputs: %s" % response.result)
        data = client.batch_read([files[0].digest]).responses[0].data
        sys.stdout.write(
            json.dumps({"action": reapi_client.key(action_digest), "output": data.decode()}) + "\n"
        )
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
