#!/usr/bin/python3
# An independent REAPI v2 client (Python grpcio + the published remote-apis
# protos) used to prove that `specbuild server` interoperates with clients we
# did not write. It shares no code with specbuild.
#
# Usage: reapi_client.py TARGET [INSTANCE]
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
import traceback
import uuid

PROTO_ROOT = os.environ.get("REAPI_PROTO_ROOT", "/usr/src/bazel-bootstrap/third_party")
WKT_INCLUDE = os.environ.get("PROTOC_INCLUDE", "/usr/include")

# The message modules we need; google/protobuf/* come with the Python runtime.
PROTO_FILES = [
    "build/bazel/remote/execution/v2/remote_execution.proto",
    "build/bazel/semver/semver.proto",
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/longrunning/operations.proto",
    "google/rpc/status.proto",
    "google/bytestream/bytestream.proto",
]

KIB = 1024
MIB = 1024 * KIB
CALL_TIMEOUT = 120  # seconds, per RPC

# gRPC status codes as plain numbers (google.rpc.Code).
OK = 0
INVALID_ARGUMENT = 3
NOT_FOUND = 5
RESOURCE_EXHAUSTED = 8
CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


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
    return True


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


def rpc_code(e):
    """The numeric status code of a grpc.RpcError."""
    return e.code().value[0]


def expect_rpc_error(fn, wanted):
    """Calls fn(); passes if it raises an RpcError with one of the wanted codes."""
    import grpc

    try:
        result = fn()
    except grpc.RpcError as e:
        code = rpc_code(e)
        detail = "%s: %s" % (code_name(code), e.details())
        return code in wanted, detail
    return False, "expected %s, but the call succeeded: %r" % (
        " or ".join(code_name(c) for c in wanted),
        result if not isinstance(result, (bytes, bytearray)) else "%d bytes" % len(result),
    )


class Client:
    """Thin wrappers around the REAPI and ByteStream RPCs, built without a grpc plugin."""

    def __init__(self, target, instance, re_pb2, bs_pb2):
        import grpc

        self.grpc = grpc
        self.re = re_pb2
        self.bs = bs_pb2
        self.instance = instance
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", 16 * MIB),
                ("grpc.max_receive_message_length", 16 * MIB),
            ],
        )
        re = re_pb2
        bs = bs_pb2
        cas = "/build.bazel.remote.execution.v2.ContentAddressableStorage/"
        ac = "/build.bazel.remote.execution.v2.ActionCache/"
        self._get_capabilities = self._unary(
            "/build.bazel.remote.execution.v2.Capabilities/GetCapabilities",
            re.GetCapabilitiesRequest,
            re.ServerCapabilities,
        )
        self._find_missing = self._unary(
            cas + "FindMissingBlobs", re.FindMissingBlobsRequest, re.FindMissingBlobsResponse
        )
        self._batch_update = self._unary(
            cas + "BatchUpdateBlobs", re.BatchUpdateBlobsRequest, re.BatchUpdateBlobsResponse
        )
        self._batch_read = self._unary(
            cas + "BatchReadBlobs", re.BatchReadBlobsRequest, re.BatchReadBlobsResponse
        )
        self._get_tree = self.channel.unary_stream(
            cas + "GetTree",
            request_serializer=re.GetTreeRequest.SerializeToString,
            response_deserializer=re.GetTreeResponse.FromString,
        )
        self._get_action_result = self._unary(
            ac + "GetActionResult", re.GetActionResultRequest, re.ActionResult
        )
        self._update_action_result = self._unary(
            ac + "UpdateActionResult", re.UpdateActionResultRequest, re.ActionResult
        )
        self._read = self.channel.unary_stream(
            "/google.bytestream.ByteStream/Read",
            request_serializer=bs.ReadRequest.SerializeToString,
            response_deserializer=bs.ReadResponse.FromString,
        )
        self._write = self.channel.stream_unary(
            "/google.bytestream.ByteStream/Write",
            request_serializer=bs.WriteRequest.SerializeToString,
            response_deserializer=bs.WriteResponse.FromString,
        )
        self._query_write_status = self._unary(
            "/google.bytestream.ByteStream/QueryWriteStatus",
            bs.QueryWriteStatusRequest,
            bs.QueryWriteStatusResponse,
        )

    def _unary(self, path, req_cls, res_cls):
        return self.channel.unary_unary(
            path,
            request_serializer=req_cls.SerializeToString,
            response_deserializer=res_cls.FromString,
        )

    def close(self):
        self.channel.close()

    # --- helpers -----------------------------------------------------------

    def digest(self, data):
        return self.re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))

    def prefix(self, instance=None):
        inst = self.instance if instance is None else instance
        return inst + "/" if inst else ""

    def read_name(self, d):
        return "%sblobs/%s/%d" % (self.prefix(), d.hash, d.size_bytes)

    def write_name(self, d, upload_id=None):
        return "%suploads/%s/blobs/%s/%d" % (
            self.prefix(),
            upload_id or str(uuid.uuid4()),
            d.hash,
            d.size_bytes,
        )

    # --- RPCs --------------------------------------------------------------

    def get_capabilities(self):
        req = self.re.GetCapabilitiesRequest(instance_name=self.instance)
        return self._get_capabilities(req, timeout=CALL_TIMEOUT)

    def find_missing(self, digests, instance=None):
        req = self.re.FindMissingBlobsRequest(
            instance_name=self.instance if instance is None else instance,
            blob_digests=digests,
        )
        return list(self._find_missing(req, timeout=CALL_TIMEOUT).missing_blob_digests)

    def batch_update(self, pairs):
        """pairs: [(Digest, bytes)] -> BatchUpdateBlobsResponse."""
        req = self.re.BatchUpdateBlobsRequest(instance_name=self.instance)
        for d, data in pairs:
            r = req.requests.add()
            r.digest.CopyFrom(d)
            r.data = data
        return self._batch_update(req, timeout=CALL_TIMEOUT)

    def upload(self, blobs):
        """Uploads small blobs, raising unless every one is stored."""
        resp = self.batch_update([(self.digest(b), b) for b in blobs])
        bad = [r for r in resp.responses if r.status.code != OK]
        if bad:
            raise RuntimeError(
                "BatchUpdateBlobs rejected %d blob(s): %s"
                % (len(bad), "; ".join("%s %s" % (code_name(r.status.code), r.status.message) for r in bad))
            )

    def batch_read(self, digests):
        req = self.re.BatchReadBlobsRequest(instance_name=self.instance, digests=digests)
        return self._batch_read(req, timeout=CALL_TIMEOUT)

    def get_tree(self, root, page_size=0, page_token=""):
        """One GetTree call: (directories, next_page_token, number of messages)."""
        req = self.re.GetTreeRequest(
            instance_name=self.instance, root_digest=root, page_size=page_size, page_token=page_token
        )
        dirs = []
        token = ""
        messages = 0
        for resp in self._get_tree(req, timeout=CALL_TIMEOUT):
            messages += 1
            dirs.extend(resp.directories)
            if resp.next_page_token:
                token = resp.next_page_token
        return dirs, token, messages

    def read(self, name, offset=0, limit=0):
        req = self.bs.ReadRequest(resource_name=name, read_offset=offset, read_limit=limit)
        return b"".join(r.data for r in self._read(req, timeout=CALL_TIMEOUT))

    def write(self, name, data, offset=0, chunk=MIB, finish=True):
        """Streams data (starting at `offset` of the blob) to `name`; returns committed_size."""

        def requests():
            pos = 0
            first = True
            while True:
                piece = data[pos : pos + chunk]
                last = pos + len(piece) >= len(data)
                yield self.bs.WriteRequest(
                    resource_name=name if first else "",
                    write_offset=offset + pos,
                    finish_write=finish and last,
                    data=piece,
                )
                first = False
                pos += len(piece)
                if last:
                    return

        return self._write(requests(), timeout=CALL_TIMEOUT).committed_size

    def query_write_status(self, name):
        req = self.bs.QueryWriteStatusRequest(resource_name=name)
        return self._query_write_status(req, timeout=CALL_TIMEOUT)

    def get_action_result(self, action_digest, inline_stdout=False, instance=None):
        req = self.re.GetActionResultRequest(
            instance_name=self.instance if instance is None else instance,
            action_digest=action_digest,
            inline_stdout=inline_stdout,
        )
        return self._get_action_result(req, timeout=CALL_TIMEOUT)

    def update_action_result(self, action_digest, result):
        req = self.re.UpdateActionResultRequest(
            instance_name=self.instance, action_digest=action_digest, action_result=result
        )
        return self._update_action_result(req, timeout=CALL_TIMEOUT)


def key(d):
    return "%s/%d" % (d.hash, d.size_bytes)


def run_checks(c, checks):
    re = c.re
    state = {}

    # --- Capabilities ------------------------------------------------------

    def capabilities():
        caps = c.get_capabilities()
        cc = caps.cache_capabilities
        problems = []
        if re.DigestFunction.SHA256 not in list(cc.digest_function):
            problems.append("SHA256 not in digest_function %s" % list(cc.digest_function))
        if cc.max_batch_total_size_bytes <= 0:
            problems.append("max_batch_total_size_bytes is %d" % cc.max_batch_total_size_bytes)
        if not caps.HasField("low_api_version"):
            problems.append("low_api_version missing")
        if not caps.HasField("high_api_version"):
            problems.append("high_api_version missing")
        else:
            hv = caps.high_api_version
            if (hv.major, hv.minor) < (2, 0):
                problems.append("high_api_version %d.%d < 2.0" % (hv.major, hv.minor))
        state["max_batch"] = cc.max_batch_total_size_bytes
        lv, hv = caps.low_api_version, caps.high_api_version
        detail = "sha256 ok, max_batch=%d, api %d.%d.%d..%d.%d.%d" % (
            cc.max_batch_total_size_bytes,
            lv.major,
            lv.minor,
            lv.patch,
            hv.major,
            hv.minor,
            hv.patch,
        )
        return not problems, "; ".join(problems) or detail

    checks.run("capabilities", capabilities)

    def capabilities_unknown_instance():
        req = re.GetCapabilitiesRequest(instance_name="no-such-instance")
        return expect_rpc_error(
            lambda: c._get_capabilities(req, timeout=CALL_TIMEOUT), [INVALID_ARGUMENT, NOT_FOUND]
        )

    checks.run("capabilities_unknown_instance_rejected", capabilities_unknown_instance)

    # --- CAS batch calls ---------------------------------------------------

    small = [os.urandom(n) for n in (1, 100, 4096)] + [b""]
    absent = os.urandom(333)
    state["small"] = small

    def batch_update_ok():
        resp = c.batch_update([(c.digest(b), b) for b in small])
        codes = [(key(r.digest), r.status.code) for r in resp.responses]
        want = sorted(key(c.digest(b)) for b in small)
        got = sorted(k for k, _ in codes)
        if got != want:
            return False, "responses for %s, expected %s" % (got, want)
        bad = [(k, code_name(code)) for k, code in codes if code != OK]
        return not bad, bad or "%d blobs stored" % len(codes)

    checks.run("batch_update_blobs_ok", batch_update_ok)

    def find_missing_only_absent():
        asked = [c.digest(b) for b in small] + [c.digest(absent)]
        missing = sorted(key(d) for d in c.find_missing(asked))
        want = [key(c.digest(absent))]
        return missing == want, "missing=%s" % missing

    checks.run("find_missing_blobs_reports_only_absent", find_missing_only_absent)

    def batch_read_identical():
        resp = c.batch_read([c.digest(b) for b in small])
        by_key = {key(r.digest): r for r in resp.responses}
        problems = []
        for b in small:
            r = by_key.get(key(c.digest(b)))
            if r is None:
                problems.append("no response for %s" % key(c.digest(b)))
            elif r.status.code != OK:
                problems.append("%s: %s" % (key(r.digest), code_name(r.status.code)))
            elif r.data != b:
                problems.append("%s: data differs (%d bytes)" % (key(r.digest), len(r.data)))
        return not problems, "; ".join(problems) or "%d blobs identical" % len(small)

    checks.run("batch_read_blobs_identical", batch_read_identical)

    def batch_read_absent():
        d = c.digest(absent)
        resp = c.batch_read([d, c.digest(small[1])])
        by_key = {key(r.digest): r for r in resp.responses}
        r = by_key.get(key(d))
        if r is None:
            return False, "no response for the absent digest"
        other = by_key.get(key(c.digest(small[1])))
        if other is None or other.status.code != OK or other.data != small[1]:
            return False, "the present blob next to the absent one was not returned OK"
        return r.status.code == NOT_FOUND, "absent blob status %s %s" % (
            code_name(r.status.code),
            r.status.message,
        )

    checks.run("batch_read_blobs_absent_not_found", batch_read_absent)

    def batch_update_mismatch():
        good = os.urandom(64)
        wrong = os.urandom(64)
        resp = c.batch_update([(c.digest(good), wrong)])
        if len(resp.responses) != 1:
            return False, "%d responses" % len(resp.responses)
        st = resp.responses[0].status
        missing = c.find_missing([c.digest(good)])
        if len(missing) != 1:
            return False, "mismatched blob was stored anyway"
        return st.code == INVALID_ARGUMENT, "%s: %s" % (code_name(st.code), st.message)

    checks.run("batch_update_blobs_digest_mismatch_invalid_argument", batch_update_mismatch)

    def batch_update_over_limit():
        limit = state.get("max_batch") or 4 * MIB
        total = limit + KIB
        sizes = [total // 3, total // 3, total - 2 * (total // 3)]
        blobs = [os.urandom(n) for n in sizes]
        ok, detail = expect_rpc_error(
            lambda: c.batch_update([(c.digest(b), b) for b in blobs]), [INVALID_ARGUMENT]
        )
        return ok, "%d bytes in 3 blobs: %s" % (total, detail)

    checks.run("batch_update_blobs_over_limit_invalid_argument", batch_update_over_limit)

    def find_missing_malformed():
        bad = re.Digest(hash="xyz", size_bytes=3)
        return expect_rpc_error(lambda: c.find_missing([bad]), [INVALID_ARGUMENT])

    checks.run("find_missing_blobs_malformed_digest_invalid_argument", find_missing_malformed)

    # --- ByteStream --------------------------------------------------------

    big = os.urandom(10 * MIB)
    big_d = c.digest(big)

    def bs_write():
        committed = c.write(c.write_name(big_d), big, chunk=MIB)
        return committed == len(big), "committed_size=%d of %d" % (committed, len(big))

    checks.run("bytestream_write_10mib", bs_write)

    def bs_read_whole():
        got = c.read(c.read_name(big_d))
        return got == big, "read %d bytes of %d, identical=%s" % (len(got), len(big), got == big)

    checks.run("bytestream_read_whole", bs_read_whole)

    def bs_read_slice():
        problems = []
        for off, lim in ((1234567, 2 * MIB + 5), (0, 10), (len(big) - 7, 0), (len(big) - 7, 100)):
            got = c.read(c.read_name(big_d), offset=off, limit=lim)
            want = big[off : off + lim] if lim else big[off:]
            if got != want:
                problems.append("offset %d limit %d: got %d bytes, want %d" % (off, lim, len(got), len(want)))
        return not problems, "; ".join(problems) or "4 slices identical"

    checks.run("bytestream_read_offset_limit", bs_read_slice)

    def bs_read_absent():
        return expect_rpc_error(lambda: c.read(c.read_name(c.digest(absent))), [NOT_FOUND])

    checks.run("bytestream_read_absent_not_found", bs_read_absent)

    def bs_read_malformed():
        name = c.prefix() + "blobs/not-a-hash/12"
        return expect_rpc_error(lambda: c.read(name), [INVALID_ARGUMENT])

    checks.run("bytestream_read_malformed_name_invalid_argument", bs_read_malformed)

    mismatch_claimed = os.urandom(3 * MIB)
    mismatch_d = c.digest(mismatch_claimed)

    def bs_write_mismatch():
        other = os.urandom(len(mismatch_claimed))
        return expect_rpc_error(
            lambda: c.write(c.write_name(mismatch_d), other, chunk=MIB), [INVALID_ARGUMENT]
        )

    checks.run("bytestream_write_digest_mismatch_invalid_argument", bs_write_mismatch)

    def bs_write_mismatch_missing():
        missing = [key(d) for d in c.find_missing([mismatch_d])]
        return missing == [key(mismatch_d)], "missing=%s" % missing

    checks.run("bytestream_write_mismatch_blob_still_missing", bs_write_mismatch_missing)

    # --- Resumable write ---------------------------------------------------

    resumable = os.urandom(6 * MIB)
    resumable_d = c.digest(resumable)
    resumable_name = c.write_name(resumable_d)
    half = 3 * MIB

    def resumable_first_half():
        committed = c.write(resumable_name, resumable[:half], chunk=MIB, finish=False)
        st = c.query_write_status(resumable_name)
        ok = st.committed_size == half and not st.complete
        return ok, "write returned committed_size=%d; QueryWriteStatus committed_size=%d complete=%s" % (
            committed,
            st.committed_size,
            st.complete,
        )

    checks.run("bytestream_resumable_partial_query_write_status", resumable_first_half)

    def resumable_rest():
        committed = c.write(resumable_name, resumable[half:], offset=half, chunk=MIB, finish=True)
        return committed == len(resumable), "committed_size=%d of %d" % (committed, len(resumable))

    checks.run("bytestream_resumable_continue_to_finish", resumable_rest)

    def resumable_complete():
        st = c.query_write_status(resumable_name)
        ok = st.complete and st.committed_size == len(resumable)
        return ok, "committed_size=%d complete=%s" % (st.committed_size, st.complete)

    checks.run("bytestream_resumable_query_write_status_complete", resumable_complete)

    def resumable_read_back():
        got = c.read(c.read_name(resumable_d))
        return got == resumable, "read %d bytes, identical=%s" % (len(got), got == resumable)

    checks.run("bytestream_resumable_read_back", resumable_read_back)

    def query_write_status_unknown_upload():
        import grpc

        name = c.write_name(c.digest(absent))
        try:
            st = c.query_write_status(name)
        except grpc.RpcError as e:
            code = rpc_code(e)
            return code == NOT_FOUND, "%s: %s" % (code_name(code), e.details())
        # Reporting nothing written yet is an acceptable answer too.
        ok = st.committed_size == 0 and not st.complete
        return ok, "OK: committed_size=%d complete=%s" % (st.committed_size, st.complete)

    checks.run("bytestream_query_write_status_unknown_upload", query_write_status_unknown_upload)

    def query_write_status_malformed():
        name = c.prefix() + "uploads/%s/blobs/not-a-hash/12" % uuid.uuid4()
        return expect_rpc_error(lambda: c.query_write_status(name), [INVALID_ARGUMENT])

    checks.run("bytestream_query_write_status_malformed_name_invalid_argument", query_write_status_malformed)

    # --- GetTree -----------------------------------------------------------

    leaf = os.urandom(50)
    mid = os.urandom(70)
    top = os.urandom(90)
    readme = b"interop tree " + os.urandom(8).hex().encode()

    def file_node(name, data, executable=False):
        return re.FileNode(name=name, digest=c.digest(data), is_executable=executable)

    dir_b = re.Directory(files=[file_node("leaf.txt", leaf)])
    b_bytes = dir_b.SerializeToString()
    dir_a = re.Directory(
        files=[file_node("mid.bin", mid, executable=True)],
        directories=[re.DirectoryNode(name="b", digest=c.digest(b_bytes))],
    )
    a_bytes = dir_a.SerializeToString()
    root = re.Directory(
        files=[file_node("README", readme), file_node("top.dat", top)],
        directories=[re.DirectoryNode(name="a", digest=c.digest(a_bytes))],
    )
    root_bytes = root.SerializeToString()
    root_d = c.digest(root_bytes)
    tree_want = sorted([root_bytes, a_bytes, b_bytes])

    def tree_setup():
        c.upload([leaf, mid, top, readme, b_bytes, a_bytes, root_bytes])
        return True, "uploaded 3 directories and 4 files"

    checks.run("get_tree_upload_directories", tree_setup)

    def tree_full():
        dirs, token, messages = c.get_tree(root_d, page_size=0)
        got = sorted(d.SerializeToString() for d in dirs)
        ok = got == tree_want and token == ""
        return ok, "%d directories in %d message(s), next_page_token=%r" % (len(dirs), messages, token)

    checks.run("get_tree_all_directories", tree_full)

    def tree_paged():
        dirs, token, _ = c.get_tree(root_d, page_size=1)
        if len(dirs) != 1 or not token:
            return False, "first page: %d directories, next_page_token=%r" % (len(dirs), token)
        first_is_root = dirs[0].SerializeToString() == root_bytes
        pages = 1
        collected = list(dirs)
        while token and pages < 10:
            more, token, _ = c.get_tree(root_d, page_size=1, page_token=token)
            if len(more) > 1:
                return False, "page %d has %d directories with page_size 1" % (pages + 1, len(more))
            collected.extend(more)
            pages += 1
        got = sorted(d.SerializeToString() for d in collected)
        ok = got == tree_want and not token
        return ok, "%d pages, %d directories, first page is the root: %s" % (
            pages,
            len(collected),
            first_is_root,
        )

    checks.run("get_tree_paged", tree_paged)

    def tree_absent():
        absent_root = c.digest(re.Directory(files=[file_node("nope", absent)]).SerializeToString())
        return expect_rpc_error(lambda: c.get_tree(absent_root), [NOT_FOUND])

    checks.run("get_tree_absent_root_not_found", tree_absent)

    # --- ActionCache -------------------------------------------------------

    command = re.Command(arguments=["/bin/echo", uuid.uuid4().hex], output_files=["out/result.txt"])
    command_bytes = command.SerializeToString()
    action = re.Action(command_digest=c.digest(command_bytes), input_root_digest=root_d)
    action_bytes = action.SerializeToString()
    action_d = c.digest(action_bytes)
    stdout = b"hello from the interop client\n" + os.urandom(16)
    out_file = os.urandom(2000)

    result = re.ActionResult(exit_code=0, stdout_digest=c.digest(stdout))
    result.output_files.add(path="out/result.txt", digest=c.digest(out_file), is_executable=False)
    result.output_files.add(path="out/tool", digest=c.digest(small[2]), is_executable=True)
    result.execution_metadata.worker = "python-interop"
    result.execution_metadata.worker_start_timestamp.seconds = 1700000000
    result.execution_metadata.worker_start_timestamp.nanos = 123000000

    def result_summary(r):
        return {
            "exit_code": r.exit_code,
            "stdout_digest": key(r.stdout_digest) if r.HasField("stdout_digest") else None,
            "stderr_digest": key(r.stderr_digest) if r.HasField("stderr_digest") else None,
            "output_files": [
                (f.path, key(f.digest), f.is_executable, bytes(f.contents)) for f in r.output_files
            ],
            "output_directories": [(d.path, key(d.tree_digest)) for d in r.output_directories],
            "worker": r.execution_metadata.worker,
            "worker_start": (
                r.execution_metadata.worker_start_timestamp.seconds,
                r.execution_metadata.worker_start_timestamp.nanos,
            ),
        }

    def ac_miss():
        return expect_rpc_error(lambda: c.get_action_result(action_d), [NOT_FOUND])

    checks.run("action_cache_get_unknown_not_found", ac_miss)

    def ac_update():
        c.upload([stdout, out_file, command_bytes, action_bytes])
        returned = c.update_action_result(action_d, result)
        same = result_summary(returned) == result_summary(result)
        return same, "UpdateActionResult OK, returned result %s the one sent" % (
            "equals" if same else "differs from"
        )

    checks.run("action_cache_update", ac_update)

    def ac_get():
        got = c.get_action_result(action_d)
        want, have = result_summary(result), result_summary(got)
        if have != want:
            return False, "got %r, want %r" % (have, want)
        if got.stdout_raw:
            return False, "stdout_raw filled although inline_stdout was not asked"
        return True, "same result (%d output files)" % len(got.output_files)

    checks.run("action_cache_get_roundtrip", ac_get)

    def ac_get_inline():
        got = c.get_action_result(action_d, inline_stdout=True)
        ok = got.stdout_raw == stdout and result_summary(got) == result_summary(result)
        return ok, "stdout_raw %d bytes, identical=%s" % (len(got.stdout_raw), got.stdout_raw == stdout)

    checks.run("action_cache_get_inline_stdout", ac_get_inline)

    # --- Instance names ----------------------------------------------------

    def unknown_instance():
        return expect_rpc_error(
            lambda: c.find_missing([c.digest(small[0])], instance="no-such-instance"),
            [INVALID_ARGUMENT, NOT_FOUND],
        )

    checks.run("unknown_instance_rejected", unknown_instance)


def main(argv):
    if len(argv) < 2 or len(argv) > 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: reapi_client.py TARGET [INSTANCE]\n")
        return 2
    target = argv[1]
    instance = argv[2] if len(argv) == 3 else ""
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="reapi-pb2-") as gen_dir:
        ok = checks.run("generate_python_modules", lambda: (generate_modules(gen_dir), "protoc ok"))
        if ok:
            try:
                from build.bazel.remote.execution.v2 import remote_execution_pb2
                from google.bytestream import bytestream_pb2
            except Exception as e:  # noqa: BLE001
                checks.add("import_python_modules", False, describe_exception(e))
            else:
                client = Client(target, instance, remote_execution_pb2, bytestream_pb2)
                try:
                    run_checks(client, checks)
                finally:
                    client.close()
    sys.stdout.write(json.dumps({"checks": checks.items}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
