#!/usr/bin/python3
# An independent Remote Asset API client (Python grpcio + the published
# remote_asset.proto from Debian's bazel-bootstrap-source), used to prove that
# `specbuild server`'s Fetch and Push services interoperate with a client we
# did not write. It shares no code with specbuild: message classes come from
# protoc --python_out, and the gRPC method paths from the published file's
# own service descriptors (no grpc plugin is needed).
#
# Usage: asset_client.py TARGET [INSTANCE]
#
# Prints one JSON object on stdout: {"checks": [{"name", "ok", "detail"}, ...]}
# and exits 0 whether or not the checks pass (the caller asserts on them).
# Exits non-zero only on a usage error.

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

PROTO_ROOT = os.environ.get("REAPI_PROTO_ROOT", "/usr/src/bazel-bootstrap/third_party")
WKT_INCLUDE = os.environ.get("PROTOC_INCLUDE", "/usr/include")

# remote_asset.proto and what it imports; google/protobuf/* come with the runtime.
PROTO_FILES = [
    "build/bazel/remote/asset/v1/remote_asset.proto",
    "build/bazel/remote/execution/v2/remote_execution.proto",
    "build/bazel/semver/semver.proto",
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/longrunning/operations.proto",
    "google/rpc/status.proto",
]

CALL_TIMEOUT = 60  # seconds, per RPC

# gRPC status codes as plain numbers (google.rpc.Code).
OK = 0
INVALID_ARGUMENT = 3
NOT_FOUND = 5
CODE_NAMES = {0: "OK", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 9: "FAILED_PRECONDITION", 12: "UNIMPLEMENTED"}


def code_name(code):
    return CODE_NAMES.get(code, str(code))


def generate_modules(out_dir):
    """Compiles the published protos into Python message modules under out_dir."""
    protoc = os.environ.get("PROTOC") or shutil.which("protoc") or "/usr/bin/protoc"
    args = [
        protoc,
        "-I" + os.path.join(PROTO_ROOT, "remoteapis"),
        "-I" + os.path.join(PROTO_ROOT, "googleapis"),
        "-I" + WKT_INCLUDE,
        "--python_out=" + out_dir,
    ] + PROTO_FILES
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("protoc failed (%d): %s" % (proc.returncode, proc.stderr.strip()))
    sys.path.insert(0, out_dir)


class Checks:
    """Collects the outcome of each named check."""

    def __init__(self):
        self.items = []

    def add(self, name, ok, detail=""):
        self.items.append({"name": name, "ok": bool(ok), "detail": str(detail)})

    def run(self, name, fn):
        """Runs fn() -> (ok, detail); an exception fails the check."""
        try:
            ok, detail = fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            ok, detail = False, describe_exception(e)
        self.add(name, ok, detail)
        return ok


def describe_exception(e):
    import grpc

    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        return "RPC failed with %s: %s" % (e.code().name, e.details())
    return "".join(traceback.format_exception_only(type(e), e)).strip() + "\n" + "".join(
        traceback.format_tb(e.__traceback__)[-3:]
    )


def expect_rpc_error(fn, wanted):
    """Calls fn(); passes if it raises an RpcError with the wanted code."""
    import grpc

    try:
        result = fn()
    except grpc.RpcError as e:
        code = e.code().value[0]
        return code == wanted, "%s: %s" % (code_name(code), e.details())
    return False, "expected %s, but the call succeeded: %r" % (code_name(wanted), result)


class Client:
    """Fetch, Push and the one CAS call needed to upload content."""

    def __init__(self, target, instance, ra, re):
        import grpc

        self.ra = ra
        self.re = re
        self.instance = instance
        self.channel = grpc.insecure_channel(target)
        self.stubs = {}
        # Method paths and message classes from the published file's descriptors.
        for service in ra.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                self.stubs[m.name] = self.channel.unary_unary(
                    "/%s/%s" % (service.full_name, m.name),
                    request_serializer=getattr(ra, m.input_type.name).SerializeToString,
                    response_deserializer=getattr(ra, m.output_type.name).FromString,
                )
        self._batch_update = self.channel.unary_unary(
            "/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchUpdateBlobs",
            request_serializer=re.BatchUpdateBlobsRequest.SerializeToString,
            response_deserializer=re.BatchUpdateBlobsResponse.FromString,
        )

    def close(self):
        self.channel.close()

    def call(self, method, **fields):
        fields.setdefault("instance_name", self.instance)
        req = getattr(self.ra, method + "Request")(**fields)
        return self.stubs[method](req, timeout=CALL_TIMEOUT)

    def digest(self, data):
        return self.re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    def upload(self, blobs):
        """Uploads small blobs, raising unless every one is stored; returns their digests."""
        req = self.re.BatchUpdateBlobsRequest(instance_name=self.instance)
        for b in blobs:
            r = req.requests.add()
            r.digest.CopyFrom(self.digest(b))
            r.data = b
        resp = self._batch_update(req, timeout=CALL_TIMEOUT)
        bad = [r for r in resp.responses if r.status.code != OK]
        if bad:
            raise RuntimeError("BatchUpdateBlobs rejected %d blob(s)" % len(bad))
        return [self.digest(b) for b in blobs]

    def qualifiers(self, pairs):
        return [self.ra.Qualifier(name=n, value=v) for n, v in pairs]


def key(d):
    return "%s/%d" % (d.hash, d.size_bytes)


def run_checks(c, checks):
    ra = c.ra
    re = c.re
    from google.protobuf.timestamp_pb2 import Timestamp

    nonce = os.urandom(8).hex()
    record = b"artifact record " + nonce.encode()
    (record_d,) = c.upload([record])
    uri_a = "urn:specbuild:v1:artifact:interop/app/" + hashlib.sha256(record).hexdigest()
    uri_b = "https://example.org/mirror/" + nonce + ".tar"
    quals = [("resource_type", "application/octet-stream"), ("vcs.commit", nonce)]
    expire = Timestamp(seconds=int(time.time()) + 3600, nanos=0)

    def push_blob():
        c.call(
            "PushBlob",
            uris=[uri_a, uri_b],
            qualifiers=c.qualifiers(quals),
            expire_at=expire,
            blob_digest=record_d,
        )
        return True, "pushed %s under 2 URIs" % key(record_d)

    checks.run("push_blob", push_blob)

    def fetch_blob():
        r = c.call("FetchBlob", uris=[uri_b], qualifiers=c.qualifiers(quals))
        problems = []
        if r.status.code != OK:
            problems.append("status %s" % code_name(r.status.code))
        if key(r.blob_digest) != key(record_d):
            problems.append("blob_digest %s, want %s" % (key(r.blob_digest), key(record_d)))
        if r.uri != uri_b:
            problems.append("uri %r" % r.uri)
        if sorted((q.name, q.value) for q in r.qualifiers) != sorted(quals):
            problems.append("qualifiers %s" % [(q.name, q.value) for q in r.qualifiers])
        if r.expires_at != expire:
            problems.append("expires_at %s, want %s" % (r.expires_at.ToJsonString(), expire.ToJsonString()))
        return not problems, "; ".join(problems) or "blob %s via %s" % (key(r.blob_digest), r.uri)

    checks.run("fetch_blob_round_trip", fetch_blob)

    def fetch_any_uri():
        r = c.call("FetchBlob", uris=["urn:nothing:" + nonce, uri_a], qualifiers=c.qualifiers(quals[::-1]))
        ok = key(r.blob_digest) == key(record_d) and r.uri == uri_a
        return ok, "uri %s, qualifiers in reverse order, blob %s" % (r.uri, key(r.blob_digest))

    checks.run("fetch_blob_any_uri_any_qualifier_order", fetch_any_uri)

    def fetch_unknown():
        return expect_rpc_error(lambda: c.call("FetchBlob", uris=["urn:nothing:" + nonce]), NOT_FOUND)

    checks.run("fetch_blob_unknown_not_found", fetch_unknown)

    def fetch_other_qualifiers():
        other = [quals[0], ("vcs.commit", "other")]
        return expect_rpc_error(
            lambda: c.call("FetchBlob", uris=[uri_a], qualifiers=c.qualifiers(other)), NOT_FOUND
        )

    checks.run("fetch_blob_other_qualifier_value_not_found", fetch_other_qualifiers)

    def fetch_subset_qualifiers():
        return expect_rpc_error(
            lambda: c.call("FetchBlob", uris=[uri_a], qualifiers=c.qualifiers(quals[:1])), NOT_FOUND
        )

    checks.run("fetch_blob_subset_of_qualifiers_not_found", fetch_subset_qualifiers)

    def oldest_content():
        past = Timestamp(seconds=int(time.time()) - 3600)
        r = c.call("FetchBlob", uris=[uri_a], qualifiers=c.qualifiers(quals), oldest_content_accepted=past)
        if key(r.blob_digest) != key(record_d):
            return False, "an hour ago: blob %s" % key(r.blob_digest)
        future = Timestamp(seconds=int(time.time()) + 3600)
        return expect_rpc_error(
            lambda: c.call(
                "FetchBlob", uris=[uri_a], qualifiers=c.qualifiers(quals), oldest_content_accepted=future
            ),
            NOT_FOUND,
        )

    checks.run("fetch_blob_oldest_content_accepted", oldest_content)

    def push_expired():
        uri = "urn:expired:" + nonce
        c.call("PushBlob", uris=[uri], blob_digest=record_d, expire_at=Timestamp(seconds=int(time.time()) - 1))
        return expect_rpc_error(lambda: c.call("FetchBlob", uris=[uri]), NOT_FOUND)

    checks.run("push_blob_expired_not_found", push_expired)

    def push_directory():
        f1, f2 = b"hello " + nonce.encode(), b"world " + nonce.encode()
        d1, d2 = c.upload([f1, f2])
        sub = re.Directory(files=[re.FileNode(name="w.txt", digest=d2)])
        sub_bytes = sub.SerializeToString(deterministic=True)
        (sub_d,) = c.upload([sub_bytes])
        root = re.Directory(
            files=[re.FileNode(name="h.txt", digest=d1, is_executable=True)],
            directories=[re.DirectoryNode(name="sub", digest=sub_d)],
        )
        (root_d,) = c.upload([root.SerializeToString(deterministic=True)])
        uri = "https://example.org/src/" + nonce + ".tar.gz"
        unpacked = [("resource_type", "application/x-tar"), ("unpacked", "1")]
        c.call("PushDirectory", uris=[uri], qualifiers=c.qualifiers(unpacked), root_directory_digest=root_d)
        r = c.call("FetchDirectory", uris=[uri], qualifiers=c.qualifiers(unpacked))
        if key(r.root_directory_digest) != key(root_d) or r.uri != uri or r.status.code != OK:
            return False, "got %s via %r" % (key(r.root_directory_digest), r.uri)
        ok, detail = expect_rpc_error(
            lambda: c.call("FetchBlob", uris=[uri], qualifiers=c.qualifiers(unpacked)), NOT_FOUND
        )
        return ok, "directory %s; FetchBlob of its name: %s" % (key(root_d), detail)

    checks.run("push_fetch_directory_round_trip", push_directory)

    def push_absent():
        absent = c.digest(b"never uploaded " + nonce.encode())
        return expect_rpc_error(
            lambda: c.call("PushBlob", uris=["urn:absent:" + nonce], blob_digest=absent), INVALID_ARGUMENT
        )

    checks.run("push_blob_absent_content_invalid_argument", push_absent)

    def push_directory_absent():
        absent = c.digest(b"no such directory " + nonce.encode())
        return expect_rpc_error(
            lambda: c.call("PushDirectory", uris=["urn:absent:" + nonce], root_directory_digest=absent),
            INVALID_ARGUMENT,
        )

    checks.run("push_directory_absent_tree_invalid_argument", push_directory_absent)

    def fetch_no_uris():
        return expect_rpc_error(lambda: c.call("FetchBlob", uris=[]), INVALID_ARGUMENT)

    checks.run("fetch_blob_without_uris_invalid_argument", fetch_no_uris)

    def duplicate_qualifiers():
        dup = [("a", "1"), ("a", "2")]
        return expect_rpc_error(
            lambda: c.call("FetchDirectory", uris=[uri_a], qualifiers=c.qualifiers(dup)), INVALID_ARGUMENT
        )

    checks.run("fetch_directory_duplicate_qualifier_names_invalid_argument", duplicate_qualifiers)

    def malformed_digest():
        bad = re.Digest(hash="not-a-hash", size_bytes=3)
        return expect_rpc_error(lambda: c.call("PushBlob", uris=[uri_a], blob_digest=bad), INVALID_ARGUMENT)

    checks.run("push_blob_malformed_digest_invalid_argument", malformed_digest)

    def unknown_instance():
        return expect_rpc_error(
            lambda: c.call("FetchBlob", instance_name="no-such-instance", uris=[uri_a]), INVALID_ARGUMENT
        )

    checks.run("fetch_blob_unknown_instance_invalid_argument", unknown_instance)

    def still_there():
        r = c.call("FetchBlob", uris=[uri_a], qualifiers=c.qualifiers(quals))
        return key(r.blob_digest) == key(record_d), "after the refusals: %s" % key(r.blob_digest)

    checks.run("fetch_blob_unchanged_after_refusals", still_there)


def main(argv):
    if len(argv) < 2 or len(argv) > 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: asset_client.py TARGET [INSTANCE]\n")
        return 2
    target = argv[1]
    instance = argv[2] if len(argv) == 3 else ""
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="asset-pb2-") as gen_dir:
        ok = checks.run("generate_python_modules", lambda: (generate_modules(gen_dir) or True, "protoc ok"))
        if ok:
            try:
                from build.bazel.remote.asset.v1 import remote_asset_pb2
                from build.bazel.remote.execution.v2 import remote_execution_pb2
            except Exception as e:  # noqa: BLE001
                checks.add("import_python_modules", False, describe_exception(e))
            else:
                client = Client(target, instance, remote_asset_pb2, remote_execution_pb2)
                try:
                    run_checks(client, checks)
                finally:
                    client.close()
    sys.stdout.write(json.dumps({"checks": checks.items}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
