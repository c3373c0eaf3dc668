#!/usr/bin/env bash
# Installs the Debian packages the tests need. Run it as root or as a user
# with sudo (it asks for sudo only when something must be installed):
#   gcc, openssl           - real compiles and a TLS test certificate
#   cmake, ninja-build     - examples/hello's cmake element (its end-to-end test)
#   bazel-bootstrap        - Bazel 4.2.3, a real REAPI client (interop tests)
#   bazel-bootstrap-source - the published REAPI .proto files (Bazel's copy), and
#                            the sources of Bazel's remote worker, an independent
#                            REAPI server that executes actions (built with javac)
#   default-jdk-headless   - javac for that worker
#   protobuf-compiler, libprotobuf-dev (the well-known .proto files protoc
#   needs), python3-grpcio, python3-protobuf
#                          - an independent Python REAPI client for interop tests
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(gcc make cmake ninja-build openssl bazel-bootstrap bazel-bootstrap-source default-jdk-headless protobuf-compiler libprotobuf-dev python3-grpcio python3-protobuf)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-test-deps.sh: missing ${missing[*]}; run this script as root (sudo is not installed)" >&2
      exit 1
    fi
    as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "test dependencies present: ${pkgs[*]}"
