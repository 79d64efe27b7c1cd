#!/usr/bin/env bash
# Load benchmark of the example servers (axum, actix-web, warp x stores)
# against the peers in benches/load/peers (axum + tower-sessions, actix-web +
# actix-session, and each framework with no session layer at all). Every
# server runs with one worker (the peers in the same runtime flavour as our
# examples) pinned to SERVER_CPU; wrk and the stores run pinned to LOAD_CPU;
# traffic goes to 127.0.0.1 only.
#
#   benches/load/run.sh                            # everything (~25 min)
#   COMPARISONS='memory redis' benches/load/run.sh # some comparison groups
#   MEMCHECK=0 benches/load/run.sh                 # skip the RSS check
#   MEMCHECK=only benches/load/run.sh              # only the RSS check
#
# Workloads:
#   bare  GET /bare, which never touches the session
#   W1    GET /incr without a cookie: a new session on every request
#   W2    GET /incr with one session's cookie (taken with curl just before
#         each run, so that it names a live session):
#         read, modify, write the session on every request
#
# Comparison groups (COMPARISONS, default all but old) are the servers compared with
# each other, run interleaved: all servers of a group are started, then in
# each of RUNS rounds every server runs bare, W1 and W2 back to back (the
# order of the servers rotating from round to round), so a ratio between
# two servers is taken from runs seconds apart, round by round; its median
# over the rounds and its spread are reported. For every run the script
# records req/s, p99, the server's CPU time per request (user + system, all
# threads, from /proc; and its user time alone), the store processes' CPU
# time per request, and the store commands per request (Redis INFO
# commandstats, memcached stats; reset before each run, summed over every
# node of a cluster or ring).
#   memory     axum/actix/warp + memory, tower-sessions MemoryStore, bare axum,
#              and bare axum behind a layer that only forwards (forward) and
#              behind one that also inserts a request extension (extension)
#   cookie     actix/axum/warp + fernet and nacl, actix-session's cookie
#              store (AES-GCM), bare actix-web
#   redis      axum/actix + redis, tower-sessions (fred), actix-session
#   memcached  axum/actix + memcached beside axum + redis
#   scale      axum on a Redis Cluster (3 masters, 3 replicas) and on a ring
#              of 3 memcached servers, beside axum + redis and + memcached
#   old        (not in the default) axum + redis, memcached and memory beside
#              the same servers of an older revision, whose release build
#              OLD_BIN names, e.g.
#                git worktree add /tmp/old REV && (cd /tmp/old &&
#                  cargo build --release --all-features --examples)
#                OLD_BIN=/tmp/old/target/release COMPARISONS=old benches/load/run.sh
# Session overhead = CPU us/request of W2 (or W1) minus that of the same
# server's bare, per round.
#
# The memory check runs W1 until SESSIONS sessions were made against
# server_axum --store memory --max-age 1 (then idles until they expired and
# the sweep is due, and sends a few more requests), against server_axum
# --store memory without a max-age (the store's default capacity bounds it),
# and against tower-sessions' MemoryStore, reporting VmRSS along the way.
#
# The machine may be shared: before each run the script waits (at most
# QUIET_WAIT_S) for both CPUs to be nearly idle, and a run in which other
# processes took more than 5% of a CPU is repeated (RETRIES times).
#
# Settings (environment): DURATION=3 RUNS=5 WARMUP=1 CONNECTIONS=32
# QUIET_WAIT_S=30 RETRIES=2 SERVER_CPU=0 LOAD_CPU=1 SESSIONS=1000000
# SKIP_BUILD=1 OUT=DIR (default: a new temporary directory)
# CARGO_TARGET_DIR (default: the repo's target/).
# Results: OUT/results.md (also printed; made by benches/load/report.py from
# OUT/runs.tsv, one line per run), raw wrk output in OUT/raw/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

# The command as given, settings included, for the report.
command_line=""
for name in COMPARISONS OLD_BIN DURATION RUNS WARMUP CONNECTIONS QUIET_WAIT_S RETRIES SESSIONS MEMCHECK CARGO_TARGET_DIR; do
    [[ -z ${!name+set} ]] || command_line+="$name=${!name@Q} "
done
command_line+=benches/load/run.sh

DURATION=${DURATION:-3}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
COMPARISONS=${COMPARISONS:-memory cookie redis memcached scale}
SESSIONS=${SESSIONS:-1000000}
MEMCHECK=${MEMCHECK:-1}
QUIET_WAIT_S=${QUIET_WAIT_S:-30}
RETRIES=${RETRIES:-2}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/http-session-load.XXXXXX")}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
bin=$CARGO_TARGET_DIR/release

readonly KEY_HEX=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK
readonly START_TIMEOUT_S=20    # for a server to print its port
readonly MEMCHECK_MAX_LOAD_S=180 # W1 load of the memory check, at most
readonly MEMCHECK_IDLE_S=35    # > max-age 1 s and the memory store's 30 s sweep interval

log() { echo "run.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

mkdir -p "$OUT/raw"
services=$OUT/services
server_pid=""
server_pids=()
store_pids=()

cleanup() {
    stop_servers
    [[ ! -f $services/env ]] || scripts/services.sh stop "$services" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools and builds ---------------------------------------------------------

install_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v taskset >/dev/null || missing+=(util-linux)
    ((${#missing[@]} == 0)) || {
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        log "installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    }
    scripts/services.sh install
}

build() {
    [[ ${SKIP_BUILD:-0} == 1 ]] && return
    log "building the example servers and the peers in release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    cargo build --release --all-features --examples
    cargo build --release --manifest-path benches/load/peers/Cargo.toml
}

# --- servers ------------------------------------------------------------------

# The command line of CASE (framework:store), with --port 0.
server_command() {
    local framework=${1%%:*} store=${1#*:}
    case $framework in
    axum | actix | warp)
        cmd=("$bin/examples/server_$framework" --workers 1 --port 0)
        case $store in
        fernet | nacl) cmd+=(--store "$store" --key-hex "$KEY_HEX") ;;
        redis) cmd+=(--store redis --redis-url "$HTTP_SESSION_REDIS_URL") ;;
        redis-cluster) cmd+=(--store redis --redis-cluster "$HTTP_SESSION_REDIS_CLUSTER") ;;
        memcached) cmd+=(--store memcached --memcached "$HTTP_SESSION_MEMCACHED") ;;
        memcached-ring) cmd+=(--store memcached --memcached "$HTTP_SESSION_MEMCACHED_RING") ;;
        *) cmd+=(--store "$store") ;;
        esac
        ;;
    old-axum | old-actix)
        # The example servers of an older revision, built by the caller
        # into OLD_BIN (see the old group).
        [[ -n ${OLD_BIN:-} ]] || die "the old group needs OLD_BIN (an older revision's target/release)"
        cmd=("$OLD_BIN/examples/server_${framework#old-}" --workers 1 --port 0)
        case $store in
        redis) cmd+=(--store redis --redis-url "$HTTP_SESSION_REDIS_URL") ;;
        memcached) cmd+=(--store memcached --memcached "$HTTP_SESSION_MEMCACHED") ;;
        *) cmd+=(--store "$store") ;;
        esac
        ;;
    peer-tower | peer-actix)
        local name=peer_tower_sessions
        [[ $framework == peer-tower ]] || name=peer_actix_session
        cmd=("$bin/$name" --store "$store" --workers 1 --port 0)
        [[ $store != redis ]] || cmd+=(--redis-url "$HTTP_SESSION_REDIS_URL")
        ;;
    *) die "unknown case $1" ;;
    esac
}

# store_files STORE pid|port: the pids or ports of every process of STORE.
store_files() {
    case $1 in
    redis | memcached) cat "$services/$1.$2" ;;
    redis-cluster) cat "$services"/cluster/node*/"$2" ;;
    memcached-ring) cat "$services"/ring/mc*/"$2" ;;
    esac
}
store_pids_of() { store_files "$1" pid; }
store_ports_of() { store_files "$1" port; }
store_kind() {
    case $1 in
    redis | redis-cluster) echo redis ;;
    memcached | memcached-ring) echo memcached ;;
    *) echo none ;;
    esac
}

# start_server LOGNAME ARGS...: the server pinned to SERVER_CPU; sets
# server_pid and port once it printed "listening on http://127.0.0.1:PORT".
start_server() {
    local logfile=$OUT/raw/$1.server.log i line
    shift
    : >"$logfile"
    taskset -c "$SERVER_CPU" "$@" >"$logfile" 2>&1 </dev/null &
    server_pid=$!
    server_pids+=("$server_pid")
    for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
        line=$(grep -m1 -o 'listening on http://127.0.0.1:[0-9]*' "$logfile" || true)
        if [[ -n $line ]]; then
            port=${line##*:}
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || die "server exited: $* (see $logfile)"
        sleep 0.1
    done
    die "server did not start within ${START_TIMEOUT_S}s: $*"
}

# Stops every server started (at most 5 s each, then SIGKILL).
stop_servers() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    server_pids=()
    server_pid=""
}

# The NAME=VALUE of the first Set-Cookie of GET URL.
session_cookie() {
    curl -sS --max-time 5 -o /dev/null -D - "$1" | tr -d '\r' |
        awk 'tolower($1) == "set-cookie:" { split($2, a, ";"); print a[1]; exit }'
}

# --- load -----------------------------------------------------------------------

# Busy jiffies (user, nice, system, irq, softirq, steal) of CPU N; a process's jiffies
# (utime + stime, all its threads), and its user time alone (utime).
cpu_jiffies() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
pid_jiffies() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pid_user_jiffies() { awk '{ print $14 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Waits (at most QUIET_WAIT_S) until both CPUs were less than 20% busy for a
# second: another process's build would otherwise share the CPUs.
wait_quiet() {
    local waited=0 a b
    while ((waited < QUIET_WAIT_S)); do
        a=$(($(cpu_jiffies "$SERVER_CPU") + $(cpu_jiffies "$LOAD_CPU")))
        sleep 1
        b=$(($(cpu_jiffies "$SERVER_CPU") + $(cpu_jiffies "$LOAD_CPU")))
        ((100 * (b - a) / CLK_TCK < 40)) && return 0
        waited=$((waited + 1))
    done
    log "the machine stayed busy for ${QUIET_WAIT_S}s; measuring anyway (see the 'other' column)"
}

# Jiffies of everything this script runs during a measurement: the server,
# Redis and memcached, and the children this shell waited for (wrk).
our_jiffies() {
    local pid total
    total=$(awk '{ print $16 + $17 }' "/proc/$$/stat")
    for pid in "${server_pids[@]}" "${store_pids[@]}"; do
        total=$((total + $(pid_jiffies "$pid")))
    done
    echo "$total"
}
both_cpus() { echo $(($(cpu_jiffies "$SERVER_CPU") + $(cpu_jiffies "$LOAD_CPU"))); }

# Jiffies of the processes given (a store's).
pids_jiffies() {
    local pid total=0
    for pid in "$@"; do total=$((total + $(pid_jiffies "$pid"))); done
    echo "$total"
}

# run_wrk SECONDS OUTFILE URL [COOKIE]: also records the CPU use of the
# server (server_pid) and of the store processes (case_store_pids), and the
# CPU time that other processes took on the two CPUs meanwhile
# ("# server-cpu N% other M%", in % of one CPU; "# jiffies server S store T
# user U": U is the server's user time alone).
run_wrk() {
    local seconds=$1 outfile=$2 url=$3 cookie=${4:-} header=() all0 ours0 srv0 usr0 sto0 start
    [[ -z $cookie ]] || header=(-H "Cookie: $cookie")
    echo "# $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >"$outfile"
    all0=$(both_cpus) ours0=$(our_jiffies) srv0=$(pid_jiffies "$server_pid") usr0=$(pid_user_jiffies "$server_pid")
    sto0=$(pids_jiffies "${case_store_pids[@]}") start=$(date +%s%N)
    timeout $((seconds + 30)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency "${header[@]}" "$url" >>"$outfile" 2>&1 ||
        die "wrk failed: $(tail -n 3 "$outfile")"
    awk -v all=$(($(both_cpus) - all0)) -v ours=$(($(our_jiffies) - ours0)) \
        -v srv=$(($(pid_jiffies "$server_pid") - srv0)) -v ns=$(($(date +%s%N) - start)) -v hz="$CLK_TCK" '
        BEGIN { s = ns / 1e9 * hz / 100; other = (all - ours) / s; if (other < 0) other = 0
            printf "# server-cpu %.0f%% other %.0f%%\n", srv / s, other }' >>"$outfile"
    echo "# jiffies server $(($(pid_jiffies "$server_pid") - srv0)) store $(($(pids_jiffies "${case_store_pids[@]}") - sto0)) user $(($(pid_user_jiffies "$server_pid") - usr0)) seconds $(($(date +%s%N) - start))e-9" >>"$outfile"
}
wrk_jiffies() { awk -v f="$2" '/^# jiffies/ { for (i = 3; i < NF; i += 2) if ($i == f) print $(i + 1); exit }' "$1"; }
wrk_other() { awk '/^# server-cpu/ { sub(/%/, "", $NF); print $NF; exit }' "$1"; }

# Fields of a wrk output: requests, req/s, p99 in ms, and the failed
# (non-2xx or socket error) requests.
wrk_requests() { awk '/requests in/ { print $1; exit }' "$1"; }
wrk_rps() { awk '/^Requests\/sec:/ { print $2; exit }' "$1"; }
wrk_p99_ms() {
    awk '$1 == "99%" {
        v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
        f = (unit == "us") ? 0.001 : (unit == "ms") ? 1 : (unit == "s") ? 1000 : (unit == "m") ? 60000 : -1
        printf "%.2f\n", v * f; exit }' "$1"
}
wrk_failed() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF }
        /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
        END { print n + 0 }' "$1"
}

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# (max - min) / median, in percent.
spread() {
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; printf "%.0f\n", (m > 0 ? 100 * (v[NR] - v[1]) / m : 0) }'
}

# --- store command counters -------------------------------------------------------

# memcached_command PORT COMMAND: the reply lines (up to END, RESET or ERROR).
memcached_command() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1"
        printf '%s\r\n' "$2" >&3
        while IFS= read -r -t 5 line <&3; do
            line=${line%$'\r'}
            echo "$line"
            [[ $line == END || $line == RESET || $line == ERROR ]] && break
        done
    )
}

# counters_reset STORE: zero the command counters of every node of STORE.
counters_reset() {
    local p
    for p in $(store_ports_of "$1"); do
        case $(store_kind "$1") in
        redis) redis-cli -p "$p" config resetstat >/dev/null ;;
        memcached) memcached_command "$p" "stats reset" >/dev/null ;;
        esac
    done
}

# Store commands since counters_reset, summed over the nodes, as
# "name=count ..." (for Redis also reads=N, the socket reads they came in).
counters_read() {
    local p
    for p in $(store_ports_of "$1"); do
        case $(store_kind "$1") in
        redis)
            redis-cli -p "$p" info commandstats | tr -d '\r' |
                awk -F'[_:=,]' '/^cmdstat_/ && $2 !~ /^(info|config|cluster|ping|command)$/ { printf "%s=%s ", $2, $4 }'
            # Read events: how many socket reads the commands came in.
            redis-cli -p "$p" info stats | tr -d '\r' |
                awk -F: '$1 == "total_reads_processed" { printf "reads=%s ", $2 }'
            ;;
        memcached)
            memcached_command "$p" stats |
                awk '$1 == "STAT" && ($2 ~ /^cmd_(get|set|touch|meta)$/ || $2 ~ /^(cas|delete)_(hits|misses|badval)$/) && $3 > 0 {
                    printf "%s=%s ", $2, $3 }'
            ;;
        esac
    done | tr ' ' '\n' | awk -F= 'NF == 2 { n[$1] += $2 } END { for (k in n) printf "%s=%s ", k, n[k] }'
}

# "name=count ..." divided by REQUESTS, as "name:per_request,..." ("-" if none).
per_request() {
    awk -v c="$1" -v r="$2" 'BEGIN {
        n = split(c, kv, " "); out = ""
        for (i = 1; i <= n; i++) { split(kv[i], p, "="); if (p[1] == "" || r == 0) continue
            out = out (out == "" ? "" : ",") sprintf("%s:%.2f", p[1], p[2] / r) }
        print out == "" ? "-" : out }'
}

# --- comparison groups ------------------------------------------------------------

group_cases() {
    case $1 in
    memory) echo axum:memory peer-tower:memory peer-tower:none peer-tower:forward peer-tower:extension actix:memory warp:memory ;;
    cookie) echo actix:fernet peer-actix:cookie peer-actix:none actix:nacl axum:fernet warp:fernet ;;
    redis) echo axum:redis peer-tower:redis actix:redis peer-actix:redis ;;
    memcached) echo axum:memcached axum:redis actix:memcached ;;
    scale) echo axum:redis-cluster axum:memcached-ring axum:redis axum:memcached ;;
    old) echo axum:redis old-axum:redis axum:memcached old-axum:memcached axum:memory old-axum:memory ;;
    *) die "unknown group $1 (memory cookie redis memcached scale old)" ;;
    esac
}

# A server without sessions: no layer (none), or one of the tower-sessions
# peer's two layers that only measure axum's share of an untouched request.
bare_only() { [[ $1 == *:none || $1 == *:forward || $1 == *:extension ]]; }

# measure_group GROUP: starts every server of the group, then RUNS rounds
# of bare, W1 and W2 on each (a server without sessions runs bare only),
# the order of the servers rotating by one each round. One line per run in
# runs.tsv: group round case workload requests seconds rps p99_ms failed
# other% server_us_per_request store_us_per_request store_commands
# server_user_us_per_request.
measure_group() {
    local group=$1 cases case i k n w raw try tag url cookie store
    local -A ports=() cookies=() pids=()
    group_cases "$group" >/dev/null
    read -r -a cases <<<"$(group_cases "$group")"
    n=${#cases[@]}
    for case in "${cases[@]}"; do
        server_command "$case"
        start_server "$group-${case/:/-}" "${cmd[@]}"
        ports[$case]=$port pids[$case]=$server_pid
        if ! bare_only "$case"; then
            cookies[$case]=$(session_cookie "http://127.0.0.1:$port/incr")
            [[ -n ${cookies[$case]} ]] || die "$case: no session cookie from GET /incr"
        fi
    done
    workloads() { if bare_only "$1"; then echo bare; else echo bare W1 W2; fi; }
    wait_quiet
    for case in "${cases[@]}"; do
        server_pid=${pids[$case]}
        read -r -a case_store_pids <<<"$(store_pids_of "${case#*:}" | tr '\n' ' ')"
        for w in $(workloads "$case"); do
            url=http://127.0.0.1:${ports[$case]}/incr cookie=
            [[ $w != bare ]] || url=http://127.0.0.1:${ports[$case]}/bare
            [[ $w != W2 ]] || cookie=${cookies[$case]}
            run_wrk "$WARMUP" "$OUT/raw/$group-${case/:/-}-$w.warmup.txt" "$url" "$cookie"
        done
    done
    for ((i = 1; i <= RUNS; i++)); do
        for ((k = 0; k < n; k++)); do
            case=${cases[(k + i - 1) % n]}
            store=${case#*:} tag=$group-${case/:/-}
            server_pid=${pids[$case]}
            read -r -a case_store_pids <<<"$(store_pids_of "$store" | tr '\n' ' ')"
            for w in $(workloads "$case"); do
                url=http://127.0.0.1:${ports[$case]}/incr cookie=
                [[ $w != bare ]] || url=http://127.0.0.1:${ports[$case]}/bare
                if [[ $w == W2 ]]; then
                    # A fresh session for every W2 run: the W1 run before it
                    # may have filled a bounded store (the memory store's
                    # 64 MiB evict about 100k sessions later), and a cookie
                    # of an evicted session makes every request a new one.
                    cookie=$(session_cookie "$url")
                    [[ -n $cookie ]] || die "$case: no session cookie from GET /incr"
                fi
                raw=$OUT/raw/$tag-$w.$i.txt
                for ((try = 0; try <= RETRIES; try++)); do
                    counters_reset "$store"
                    wait_quiet
                    run_wrk "$DURATION" "$raw" "$url" "$cookie"
                    (($(wrk_other "$raw") <= 5)) && break
                    cp "$raw" "$raw.polluted$try"
                    ((try == RETRIES)) || log "$case $w round $i: other processes took $(wrk_other "$raw")% of a CPU; again"
                done
                record_run "$group" "$i" "$case" "$w" "$raw" "$(counters_read "$store")"
            done
        done
        log "group $group: round $i of $RUNS done"
    done
    stop_servers
}

# us_per_request RAW FIELD REQUESTS DIGITS: the jiffies FIELD of a wrk
# output (server, store or user) in µs per request.
us_per_request() {
    awk -v j="$(wrk_jiffies "$1" "$2")" -v r="$3" -v hz="$CLK_TCK" -v d="$4" 'BEGIN { printf "%." d "f", j * 1e6 / hz / r }'
}

# record_run GROUP ROUND CASE WORKLOAD RAW COUNTS: one line of runs.tsv.
record_run() {
    local raw=$5 requests seconds failed
    requests=$(wrk_requests "$raw") failed=$(wrk_failed "$raw")
    seconds=$(wrk_jiffies "$raw" seconds)
    ((requests > 0)) || die "$3 $4: no requests (see $raw)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$requests" \
        "$(awk -v s="$seconds" 'BEGIN { printf "%.3f", s }')" "$(wrk_rps "$raw")" "$(wrk_p99_ms "$raw")" \
        "$failed" "$(wrk_other "$raw")" \
        "$(us_per_request "$raw" server "$requests" 2)" "$(us_per_request "$raw" store "$requests" 2)" \
        "$(per_request "$6" "$requests")" "$(us_per_request "$raw" user "$requests" 3)" >>"$OUT/runs.tsv"
    ((failed == 0)) || log "WARNING: $3 $4 round $2: $failed failed requests (see $raw)"
}

# --- memory check ---------------------------------------------------------------------

rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# memcheck_run LABEL IDLE CMD...: W1 (a new session per request) against
# CMD until SESSIONS sessions were made (at most MEMCHECK_MAX_LOAD_S of
# load); with IDLE=1 it then idles MEMCHECK_IDLE_S seconds (expiry and the
# sweep) and sends 20 more requests. Appends a table to OUT/memcheck.md.
memcheck_run() {
    local label=$1 idle=$2 url made=0 failed=0 raw chunk=0 started report=$OUT/memcheck.md
    local rss_idle rss_first rss_loaded hwm_loaded rss_after first_done=0 first_made=0
    shift 2
    log "memory check: $label, W1 until $SESSIONS sessions"
    start_server "memcheck-${label//[^a-z0-9]/-}" "$@"
    url=http://127.0.0.1:$port/incr
    curl -sS --max-time 5 -o /dev/null "$url"
    rss_idle=$(rss_kb "$server_pid" VmRSS)
    started=$SECONDS
    while ((made < SESSIONS && SECONDS - started < MEMCHECK_MAX_LOAD_S)); do
        chunk=$((chunk + 1))
        raw=$OUT/raw/memcheck-${label//[^a-z0-9]/-}.$chunk.txt
        run_wrk 5 "$raw" "$url"
        made=$((made + $(wrk_requests "$raw")))
        failed=$((failed + $(wrk_failed "$raw")))
        if ((first_done == 0)); then
            rss_first=$(rss_kb "$server_pid" VmRSS)
            first_made=$made
            first_done=1
        fi
    done
    rss_loaded=$(rss_kb "$server_pid" VmRSS)
    hwm_loaded=$(rss_kb "$server_pid" VmHWM)
    if ((idle)); then
        log "memory check: $made sessions made; idling ${MEMCHECK_IDLE_S}s for expiry and the sweep"
        sleep "$MEMCHECK_IDLE_S"
        for _ in $(seq 20); do curl -sS --max-time 5 -o /dev/null "$url"; done
        rss_after=$(rss_kb "$server_pid" VmRSS)
    fi
    stop_servers
    {
        echo "### Memory RSS: $label (W1, a new session per request)"
        echo
        echo "| point | sessions made | VmRSS |"
        echo "|---|---:|---:|"
        echo "| idle, after 1 request | 1 | $((rss_idle / 1024)) MiB ($rss_idle kB) |"
        echo "| after the first 5 s of W1 | $first_made | $((rss_first / 1024)) MiB ($rss_first kB) |"
        echo "| after all W1 load | $made | $((rss_loaded / 1024)) MiB ($rss_loaded kB); peak VmHWM $((hwm_loaded / 1024)) MiB |"
        ((idle)) && echo "| idle ${MEMCHECK_IDLE_S} s, then 20 requests | $((made + 20)) | $((rss_after / 1024)) MiB ($rss_after kB) |"
        echo
        echo "Failed requests (non-2xx or socket errors): $failed of $made."
        ((made >= SESSIONS)) || echo "Only $made of $SESSIONS sessions within ${MEMCHECK_MAX_LOAD_S} s of load."
        echo
    } >>"$report"
}

memcheck() {
    : >"$OUT/memcheck.md"
    memcheck_run "server_axum --store memory --max-age 1" 1 \
        "$bin/examples/server_axum" --store memory --max-age 1 --workers 1 --port 0
    memcheck_run "server_axum --store memory (no max-age, default capacity)" 0 \
        "$bin/examples/server_axum" --store memory --workers 1 --port 0
    memcheck_run "tower-sessions MemoryStore (peer-tower, no expiry)" 0 \
        "$bin/peer_tower_sessions" --store memory --port 0
}

# --- main ---------------------------------------------------------------------------------

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
(($(nproc) >= 2)) || log "WARNING: fewer than 2 CPUs; server and load will share one"

install_tools
build
# Room for every W1 session of the rounds: a full cluster node refuses writes.
SERVICES_REDIS_MAXMEMORY=1gb scripts/services.sh start "$services"
# shellcheck source=/dev/null
. "$services/env"
case_store_pids=()
# The stores share the load's CPU: the server's CPU is its own.
# Every store process counts as ours, not as "other", in the quiet checks.
read -r -a store_pids <<<"$(cat "$services"/*.pid "$services"/*/*/pid | tr '\n' ' ')"
for pid in "${store_pids[@]}"; do
    taskset -a -p -c "$LOAD_CPU" "$pid" >/dev/null
done
log "output in $OUT"

: >"$OUT/runs.tsv"
if [[ $MEMCHECK != only ]]; then
    for group in $COMPARISONS; do
        measure_group "$group"
    done
fi
[[ $MEMCHECK == 0 ]] || memcheck
{
    printf '%s\n' "connections=$CONNECTIONS" "duration=$DURATION" "runs=$RUNS" "server_cpu=$SERVER_CPU" "load_cpu=$LOAD_CPU"
    echo "machine=$(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "loadavg=at start $loadavg_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "command=$command_line"
} >"$OUT/settings.txt"
python3 benches/load/report.py "$OUT" >"$OUT/results.md"
cat "$OUT/results.md"
