#!/usr/bin/env bash
# Builds //:hello of a copy of test/interop/bazel/workspace with Debian's Bazel
# (bazel-bootstrap 4.2.3), fully offline, against a REAPI endpoint.
#
# Usage: run-bazel.sh WORKSPACE_COPY_DIR TARGET_GRPC_URL MODE
#   MODE=cache  bazel build //:hello --remote_cache=TARGET_GRPC_URL
#   MODE=exec   bazel build //:hello --remote_executor=TARGET_GRPC_URL
#               (every spawn runs remotely; no local fallback)
#   MODE=clean  bazel clean (TARGET_GRPC_URL is ignored; pass "-")
#   MODE=expunge  bazel clean --expunge (removes the output base; TARGET ignored)
# TARGET_GRPC_URL is grpc://HOST:PORT (this Bazel cannot use unix sockets).
# Bazel's output is printed as is, including its summary line, e.g.
#   INFO: 6 processes: 2 remote cache hit, 4 internal.
# and the script exits with Bazel's exit code.
#
# Environment:
#   BAZEL                   the Bazel client (default: bazel)
#   BAZEL_OUTPUT_USER_ROOT  private output root; pass the same one to every
#                           mode (default: a directory next to the workspace)
#   BAZEL_INSTALL_BASE      prebuilt install base (default: Debian's
#                           /usr/share/bazel when it holds install_base_key)
#   BAZEL_EXEC_LOG          if set, Bazel writes its JSON execution log there
#                           (one SpawnExec per spawn, with "remoteCacheHit")
#   REMOTE_INSTANCE_NAME    REAPI instance name (default: "")
#
# Bazel always runs with --batch, so no Bazel server outlives the command.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 WORKSPACE_COPY_DIR TARGET_GRPC_URL cache|exec|clean|expunge" >&2
  exit 2
fi
workspace=$(cd "$1" && pwd)
target=$2
mode=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stubs="$here/stubs"
bazel=${BAZEL:-bazel}
output_user_root=${BAZEL_OUTPUT_USER_ROOT:-"$(dirname "$workspace")/.$(basename "$workspace").bazel-root"}

if ! command -v "$bazel" >/dev/null 2>&1; then
  echo "run-bazel.sh: '$bazel' not found; run .ci/run, or: apt-get install bazel-bootstrap" >&2
  exit 127
fi

# Startup options. The system rc (/etc/bazel/bazelrc) and the user's ~/.bazelrc
# are ignored for hermeticity; the workspace's .bazelrc is read. Debian ships
# Bazel's install base unpacked in /usr/share/bazel (its system rc normally
# points there), so that has to be given explicitly once the system rc is off.
# Bazel's JVM keeps its temporary files (the binary execution log, perf data)
# under the output root, not in /tmp, where nothing would remove them.
mkdir -p "$output_user_root/tmp"
startup=(--nosystem_rc --nohome_rc --batch "--output_user_root=$output_user_root"
  "--host_jvm_args=-Djava.io.tmpdir=$output_user_root/tmp" --host_jvm_args=-XX:-UsePerfData)
install_base=${BAZEL_INSTALL_BASE:-}
if [ -z "$install_base" ] && [ -f /usr/share/bazel/install_base_key ]; then
  install_base=/usr/share/bazel
fi
if [ -n "$install_base" ]; then
  startup+=("--install_base=$install_base" --trust_install_base)
fi

# Bazel's default WORKSPACE suffix downloads rules_cc, rules_java and
# rules_proto; these local stubs replace them.
build=(
  "--override_repository=rules_cc=$stubs/rules_cc"
  "--override_repository=rules_java=$stubs/rules_java"
  "--override_repository=rules_proto=$stubs/rules_proto"
  --verbose_failures
  "--remote_instance_name=${REMOTE_INSTANCE_NAME:-}"
)
if [ -n "${BAZEL_EXEC_LOG:-}" ]; then
  build+=("--execution_log_json_file=$BAZEL_EXEC_LOG")
fi

case "$mode" in
  cache)
    build+=("--remote_cache=$target")
    ;;
  exec)
    build+=(
      "--remote_executor=$target"
      --spawn_strategy=remote
      --genrule_strategy=remote
      --noremote_local_fallback
      --jobs=8
    )
    ;;
  clean | expunge)
    ;;
  *)
    echo "run-bazel.sh: unknown MODE '$mode' (cache, exec, clean or expunge)" >&2
    exit 2
    ;;
esac

cd "$workspace"
if [ "$mode" = clean ]; then
  cmd=("$bazel" "${startup[@]}" clean)
elif [ "$mode" = expunge ]; then
  cmd=("$bazel" "${startup[@]}" clean --expunge)
else
  cmd=("$bazel" "${startup[@]}" build "${build[@]}" //:hello)
fi
echo "run-bazel.sh: ${cmd[*]}" >&2
rc=0
"${cmd[@]}" || rc=$?
echo "run-bazel.sh: bazel exited with code $rc" >&2
exit "$rc"
