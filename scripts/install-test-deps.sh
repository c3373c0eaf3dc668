#!/usr/bin/env bash
# Installs the Debian packages the tests need. Run it as root or as a user
# with sudo (it asks for sudo only when something must be installed):
#   gcc, openssl           - real compiles and a TLS test certificate
#   cmake, ninja-build     - examples/hello's cmake element (its end-to-end test)
#   bazel-bootstrap        - Bazel 4.2.3, a real REAPI client (interop tests)
#   bazel-bootstrap-source - the published REAPI and Remote Asset .proto files
#                            (Bazel's copy), and
#                            the sources of Bazel's remote worker, an independent
#                            REAPI server that executes actions (built with javac)
#   default-jdk-headless   - javac for that worker
#   chromium               - a real browser, headless, for the build timeline's test
#   protobuf-compiler, libprotobuf-dev (the well-known .proto files protoc
#   needs), python3-grpcio, python3-protobuf
#                          - independent Python REAPI and Remote Asset clients
#                            for interop tests
# and downloads Debian's source archive of zlib (real C code nobody here
# wrote, for the speculative-actions test on a real library) into
# .cache/debian-src/ of the repository: the tests then work offline.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(gcc make cmake ninja-build openssl bazel-bootstrap bazel-bootstrap-source default-jdk-headless protobuf-compiler libprotobuf-dev python3-grpcio python3-protobuf chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
fi
need_root() {
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "install-test-deps.sh: $1; run this script as root (sudo is not installed)" >&2
    exit 1
  fi
}
if [ ${#missing[@]} -gt 0 ]; then
  need_root "missing ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "test dependencies present: ${pkgs[*]}"

# Debian's zlib source archive (its .orig tarball is what the test builds).
repo=$(cd "$(dirname "$0")/.." && pwd)
src="$repo/.cache/debian-src"
if ! ls "$src"/zlib_*.orig.tar.* >/dev/null 2>&1; then
  if ! grep -rqs 'deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    need_root "Debian source archives are not enabled"
    # The same suites as the binary packages, for source archives.
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$codename" "$codename" | "${as_root[@]}" tee /etc/apt/sources.list.d/specbuild-src.sources >/dev/null
    "${as_root[@]}" apt-get update -qq
  fi
  mkdir -p "$src"
  (cd "$src" && apt-get source --download-only -qq zlib >/dev/null 2>&1 || apt-get source --download-only zlib)
fi
echo "source archives present: $(cd "$src" && ls zlib_*.orig.tar.*)"

# A small sysroot from Debian's binary packages (gcc, binutils, libc6-dev and
# what they need, without recommends), for the test that builds
# examples/hello inside a sysroot element (chrootRootDigest): downloaded, not
# installed, into .cache/sysroot-debs/ of the repository.
debs="$repo/.cache/sysroot-debs"
if ! ls "$debs"/gcc-12_*.deb >/dev/null 2>&1; then
  mkdir -p "$debs"
  roots=(gcc gcc-12 binutils libc6-dev)
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances --no-pre-depends "${roots[@]}" | grep '^\w' | sort -u)
  # shellcheck disable=SC2086 # one package name per word
  (cd "$debs" && apt-get download -qq $closure 2>/dev/null || apt-get download $closure)
fi
echo "sysroot packages present: $(ls "$debs" | wc -l) in .cache/sysroot-debs"
