#!/usr/bin/env bash
# System calls and CPU per W2 request of one server and of its store
# process, counted by perf's syscall tracepoints: how many reads, writes
# and epoll waits a request costs on each side, which CPU time alone does
# not show (e.g. a store that answers pipelined commands with one send
# each), and how often each process is switched out (context switches:
# the times it waits for the other side).
#
#   benches/load/syscalls.sh STORE_PID SERVER-COMMAND...
#   # e.g. benches/load/syscalls.sh "$(cat DIR/memcached.pid)" \
#   #      target/release/examples/server_axum --workers 1 --store memcached --memcached HOST:PORT
#
# The server runs on CPU 0 and wrk (-t1 -c32, W2: GET /incr with one
# session's cookie) on CPU 1, as in run.sh; pin the store to CPU 1 too
# (taskset -a -pc 1 STORE_PID) to match run.sh. A 2 s warm-up, then 4 s
# counted. The server command must accept --port 0 and print "listening
# on http://127.0.0.1:PORT". Needs perf with the syscalls tracepoints.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,/^[^#]/{/^#/p}' "$0" >&2; exit 2; }
store_pid=$1
shift
events=read,write,writev,sendto,sendmsg,recvfrom,epoll_wait
tp=$(tr ',' '\n' <<<"$events" | sed 's/^/syscalls:sys_enter_/' | paste -sd,),context-switches
dir=$(mktemp -d "${TMPDIR:-/tmp}/http-session-syscalls.XXXXXX")
server=
cleanup() {
    [[ -z $server ]] || kill "$server" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

taskset -c 0 "$@" --port 0 >"$dir/server.log" 2>&1 </dev/null &
server=$!
port=
for ((i = 0; i < 100; i++)); do
    port=$(grep -m1 -o 'listening on http://127.0.0.1:[0-9]*' "$dir/server.log" | sed 's/.*://' || true)
    [[ -z $port ]] || break
    kill -0 "$server" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $port ]] || { echo "server did not listen within 10 s" >&2; exit 1; }
url=http://127.0.0.1:$port/incr
cookie=$(curl -s --max-time 5 -D - -o /dev/null "$url" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | tr -d '\r')
[[ -n $cookie ]] || { echo "no session cookie from $url" >&2; exit 1; }
jiffies() { awk '{print $14 + $15}' "/proc/$1/stat"; }

timeout 30 taskset -c 1 wrk -t1 -c32 -d2s -H "Cookie: $cookie" "$url" >/dev/null
s0=$(jiffies "$store_pid") v0=$(jiffies "$server")
timeout 30 perf stat -x, -e "$tp" -p "$store_pid" -o "$dir/store.csv" -- sleep 4 &
p1=$!
timeout 30 perf stat -x, -e "$tp" -p "$server" -o "$dir/server.csv" -- sleep 4 &
p2=$!
out=$(timeout 30 taskset -c 1 wrk -t1 -c32 -d4s -H "Cookie: $cookie" "$url")
wait "$p1" "$p2"
s1=$(jiffies "$store_pid") v1=$(jiffies "$server")
requests=$(awk '/requests in/ {print $1}' <<<"$out")
hz=$(getconf CLK_TCK)
awk -v n="$requests" -v hz="$hz" -v s=$((s1 - s0)) -v v=$((v1 - v0)) 'BEGIN {
    printf "requests %d (%.0f/s); CPU us/request: server %.1f, store %.1f\n", n, n / 4, v * 1e6 / hz / n, s * 1e6 / hz / n }'
for side in server store; do
    awk -F, -v n="$requests" -v side="$side" '$3 ~ /sys_enter_/ {
        sub(/.*sys_enter_/, "", $3); line = line sprintf(" %s %.3f", $3, $1 / n) }
        $3 == "context-switches" { cs = $1 / n }
        END { print side " syscalls/request:" line "; context switches/request " sprintf("%.3f", cs) }' "$dir/$side.csv"
done
