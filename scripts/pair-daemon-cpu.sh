#!/bin/bash
# The wrapper daemon's CPU over cold zlib builds (make -j2 through
# specbuild-cc, a new server and daemon each), alternating between built
# trees, round by round: how a change to a miss's path was measured where
# whole-build ratios move by more than the change (docs/performance.md,
# session 11). Each tree must be built (npm run build) and zlib's sources
# fetched (npm run bench:realworld does).
#
#   scripts/pair-daemon-cpu.sh [ROUNDS] TREE[,WORKERS] ...
#   scripts/pair-daemon-cpu.sh 4 /tmp/old /work/main
#   scripts/pair-daemon-cpu.sh 2 /work/main,1 /work/main,2
#
# Prints one JSON line per build: the tree, its wall time, and the ticks
# (10 ms) of CPU the daemon and the server used from the daemon's start to
# the build's end.
set -euo pipefail
ROUNDS=${1:-3}
shift || true
[ $# -gt 0 ] || { echo "usage: $0 [ROUNDS] TREE[,WORKERS] ..." >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
TARBALL=$(ls "$HERE"/.cache/debian-src/zlib_*.orig.tar.* 2>/dev/null | head -1)
[ -n "$TARBALL" ] || { echo "$0: no zlib sources in .cache/debian-src (run npm run bench:realworld once)" >&2; exit 2; }
D=$(mktemp -d /tmp/pair-daemon-cpu.XXXXXX)
trap 'pkill -f "$D/" 2>/dev/null || true; rm -rf "$D"' EXIT
mkdir -p "$D/t"
tar -xf "$TARBALL" -C "$D/t" --strip-components=1
(cd "$D/t" && CC=gcc ./configure >/dev/null)
ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
for r in $(seq "$ROUNDS"); do
  for spec in "$@"; do
    IFS=, read -r tree workers <<< "$spec"
    if [ -n "${workers:-}" ]; then export SPECBUILD_DAEMON_WORKERS=$workers; else unset SPECBUILD_DAEMON_WORKERS; fi
    rm -rf "$D/w" "$D/server" "$D/xdg" "$D/daemon.sock.answers"
    cp -a "$D/t" "$D/w"
    node "$tree/dist/src/cli/main.js" server --listen "unix:$D/reapi.sock" --cache-dir "$D/server" --jobs 2 > "$D/server.out" 2>&1 &
    SP=$!
    for _ in $(seq 100); do grep -q listening "$D/server.out" 2>/dev/null && break; sleep 0.1; done
    export SPECBUILD_SERVER="unix:$D/reapi.sock" SPECBUILD_DAEMON_SOCKET="$D/daemon.sock" XDG_CACHE_HOME="$D/xdg"
    cc="$tree/dist/native/specbuild-cc"
    "$cc" gcc --version >/dev/null
    sleep 1
    DP=$(pgrep -f "daemon-main.bundle.js --socket $D/daemon.sock" | head -1)
    d0=$(ticks "$DP"); s0=$(ticks "$SP")
    t0=$(date +%s.%N)
    (cd "$D/w" && make -j2 CC="$cc gcc" >/dev/null 2>&1)
    t1=$(date +%s.%N)
    d1=$(ticks "$DP"); s1=$(ticks "$SP")
    printf '{"round":%s,"tree":"%s","workers":"%s","wall_s":%.2f,"daemon_ticks":%s,"server_ticks":%s}\n' \
      "$r" "$tree" "${workers:-default}" "$(echo "$t1 - $t0" | bc -l)" "$((d1 - d0))" "$((s1 - s0))"
    kill "$DP" "$SP" 2>/dev/null || true
    wait 2>/dev/null || true
  done
done
