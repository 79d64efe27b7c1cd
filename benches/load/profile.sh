#!/usr/bin/env bash
# Where a server's CPU time goes under one workload of benches/load/run.sh:
# starts the server pinned to CPU 0, loads it with wrk pinned to CPU 1, and
# samples it with perf (call graphs by frame pointer) meanwhile.
#
#   benches/load/profile.sh WORKLOAD SERVER-COMMAND...
#
# WORKLOAD is bare, W1 or W2 (as in run.sh). The server command must accept
# --port 0 and print "listening on http://127.0.0.1:PORT", as the example
# servers and the peers do. For useful call graphs build with frame pointers
# and line tables, in a target dir of its own:
#
#   RUSTFLAGS='-C force-frame-pointers=yes' CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     CARGO_TARGET_DIR=/tmp/target-prof cargo build --release --all-features --examples
#   benches/load/profile.sh W2 /tmp/target-prof/release/examples/server_axum --store memory
#
# Settings (environment): SECONDS_SAMPLED=8 CONNECTIONS=16 OUT=DIR (default: a
# new temporary directory). Prints the top symbols by self time and by time
# including callees; OUT/perf.data stays for `perf report -i`.
set -euo pipefail

[[ $# -ge 2 ]] || {
    sed -n '2,21p' "$0" >&2
    exit 2
}
workload=$1
shift
SECONDS_SAMPLED=${SECONDS_SAMPLED:-8}
CONNECTIONS=${CONNECTIONS:-16}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/http-session-profile.XXXXXX")}
mkdir -p "$OUT"

command -v perf >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
}
command -v wrk >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

server_pid="" wrk_pid=""
cleanup() {
    local pid
    for pid in $wrk_pid $server_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

: >"$OUT/server.log"
taskset -c 0 "$@" --port 0 >"$OUT/server.log" 2>&1 </dev/null &
server_pid=$!
for _ in $(seq 200); do
    grep -q 'listening on' "$OUT/server.log" && break
    kill -0 "$server_pid" || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.1
done
port=$(grep -m1 -o 'listening on http://127.0.0.1:[0-9]*' "$OUT/server.log" | sed 's/.*://')
[[ -n $port ]] || { echo "profile.sh: the server did not start" >&2; exit 1; }
url=http://127.0.0.1:$port/incr
header=()
case $workload in
bare) url=http://127.0.0.1:$port/bare ;;
W1) ;;
W2)
    cookie=$(curl -sS --max-time 5 -o /dev/null -D - "$url" | tr -d '\r' |
        awk 'tolower($1) == "set-cookie:" { split($2, a, ";"); print a[1]; exit }')
    header=(-H "Cookie: $cookie")
    ;;
*) echo "profile.sh: WORKLOAD is bare, W1 or W2" >&2; exit 2 ;;
esac

timeout $((SECONDS_SAMPLED + 30)) taskset -c 1 \
    wrk -t1 -c"$CONNECTIONS" -d"$((SECONDS_SAMPLED + 2))s" --latency "${header[@]}" "$url" >"$OUT/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 1
perf record -q -F 997 -g -p "$server_pid" -o "$OUT/perf.data" -- sleep "$SECONDS_SAMPLED" 2>"$OUT/perf-record.log"
wait "$wrk_pid" || true
wrk_pid=""

echo "== $workload: $*"
grep -E 'Requests/sec|99%' "$OUT/wrk.txt"
top() { grep -E '^ +[0-9]' | sed -E 's/ +- +- *$//; s/ +$//' | cut -c1-170 | head -n "$1"; }
echo "== self time (top 30)"
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | top 30
echo "== including callees (top 40)"
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | top 40
echo "== including callees: sessions, JSON, crypto, allocation, store clients (top 60)"
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E 'http_session|serde_json|aes|sha2|hmac|base64|getrandom|salsa|poly1305|cookie|tower_sessions|actix_session|redis|fred|memcache|malloc|free|realloc|alloc::' |
    top 60
echo "(perf data: $OUT/perf.data)"
