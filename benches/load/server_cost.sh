#!/usr/bin/env bash
# Instructions per request of a whole server (framework, runtime, session
# layer, store client) under one workload of benches/load/run.sh, counted by
# callgrind: deterministic where the CPU time of the load benchmark swings.
# The server runs under valgrind; wrk loads it for a warm-up (not counted),
# then callgrind counts the instructions of every thread over a bounded run,
# divided by the requests wrk saw answered.
#
#   benches/load/server_cost.sh WORKLOAD SERVER-COMMAND...
#   # e.g. target/release/examples/server_axum --store memory
#   #      benches/load/peers/target/release/peer_tower_sessions --store memory
#
# WORKLOAD is bare, W1 or W2 (as in run.sh). The server command must accept
# --port 0 and print "listening on http://127.0.0.1:PORT". Prints
# "WORKLOAD instr/request requests" and leaves the callgrind profile in
# OUT/callgrind.out (callgrind_annotate OUT/callgrind.out shows where the
# instructions go; build with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
# for file names and lines).
#
# Settings (environment): SECONDS_COUNTED=6 CONNECTIONS=1 OUT=DIR (default: a
# new temporary directory).
set -euo pipefail

[[ $# -ge 2 ]] || {
    sed -n '2,21p' "$0" >&2
    exit 2
}
workload=$1
shift
SECONDS_COUNTED=${SECONDS_COUNTED:-6}
CONNECTIONS=${CONNECTIONS:-1}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/http-session-cost.XXXXXX")}
mkdir -p "$OUT"
for tool in valgrind wrk curl; do
    command -v "$tool" >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind wrk curl >/dev/null
        break
    }
done

server_pid=""
cleanup() {
    [[ -z $server_pid ]] && return
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT

rm -f "$OUT"/callgrind.out*
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
    "$@" --port 0 >"$OUT/server.log" 2>"$OUT/valgrind.log" </dev/null &
server_pid=$!
port=""
for _ in $(seq 600); do
    port=$(grep -m1 -o 'listening on http://127.0.0.1:[0-9]*' "$OUT/server.log" | sed 's/.*://' || true)
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$OUT/valgrind.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $port ]] || { echo "server_cost.sh: the server did not start within 60 s" >&2; exit 1; }

url=http://127.0.0.1:$port/incr
header=()
case $workload in
bare) url=http://127.0.0.1:$port/bare ;;
W1) ;;
W2)
    cookie=$(curl -sS --max-time 10 -o /dev/null -D - "$url" | tr -d '\r' |
        awk 'tolower($1) == "set-cookie:" { split($2, a, ";"); print a[1]; exit }')
    [[ -n $cookie ]] || { echo "server_cost.sh: no session cookie from $url" >&2; exit 1; }
    header=(-H "Cookie: $cookie")
    ;;
*) echo "server_cost.sh: WORKLOAD is bare, W1 or W2" >&2; exit 2 ;;
esac

load() { # SECONDS -> wrk's output
    timeout $(($1 + 30)) wrk -t1 -c"$CONNECTIONS" -d"${1}s" "${header[@]}" "$url"
}
load 2 >"$OUT/warmup.txt"
callgrind_control -i on "$server_pid" >/dev/null
load "$SECONDS_COUNTED" >"$OUT/wrk.txt"
callgrind_control -i off "$server_pid" >/dev/null
callgrind_control -d "$server_pid" >/dev/null
requests=$(awk '/requests in/ { print $1; exit }' "$OUT/wrk.txt")
errors=$(awk '/Non-2xx|Socket errors/' "$OUT/wrk.txt")
[[ -z $errors ]] || { echo "server_cost.sh: $errors" >&2; exit 1; }
instructions=$(cat "$OUT"/callgrind.out* | awk '/^totals:/ { s += $2 } END { print s + 0 }')
[[ $requests -gt 0 ]] || { echo "server_cost.sh: no requests answered" >&2; exit 1; }
printf '%s %d %d\n' "$workload" $((instructions / requests)) "$requests"
