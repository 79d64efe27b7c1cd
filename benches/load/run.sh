#!/usr/bin/env bash
# Load benchmark of the example servers (axum, actix-web, warp x stores)
# against the peers in benches/load/peers (axum + tower-sessions, actix-web +
# actix-session). Each server runs with one worker thread pinned to one CPU,
# wrk runs pinned to the other; traffic goes to 127.0.0.1 only.
#
#   benches/load/run.sh                                   # everything (~20 min)
#   CASES='axum:memory peer-tower:memory' benches/load/run.sh   # a subset
#   MEMCHECK=0 benches/load/run.sh                        # skip the RSS check
#   MEMCHECK=only benches/load/run.sh                     # only the RSS check
#
# Workloads, run against one server per case: a warm-up of each, then RUNS
# rounds of DURATION seconds of each (bare, W1, W2 back to back), reported
# as the median req/s, the median p99 latency and the median of the
# per-round W1/bare and W2/bare ratios:
#   bare  GET /bare, which never touches the session
#   W1    GET /incr without a cookie: a new session on every request
#   W2    GET /incr with one session's cookie (taken first with curl):
#         read, modify, write the session on every request
# For Redis and memcached stores the store commands per request are counted
# (Redis INFO commandstats / memcached stats, reset before the runs).
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
# Settings (environment): DURATION=5 RUNS=3 WARMUP=1 CONNECTIONS=16
# QUIET_WAIT_S=30 RETRIES=2 SERVER_CPU=0 LOAD_CPU=1
# STORES='memory fernet nacl redis memcached' (add simple for the plain
# cookie) SESSIONS=1000000 SKIP_BUILD=1 OUT=DIR (default: a new temporary
# directory) CARGO_TARGET_DIR (default: the repo's target/).
# Results: OUT/results.md (also printed), OUT/results.tsv, raw wrk output in
# OUT/raw/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

# The command as given, settings included, for the report.
command_line=""
for name in CASES STORES DURATION RUNS WARMUP CONNECTIONS QUIET_WAIT_S RETRIES SESSIONS MEMCHECK CARGO_TARGET_DIR; do
    [[ -z ${!name+set} ]] || command_line+="$name=${!name@Q} "
done
command_line+=benches/load/run.sh

DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
STORES=${STORES:-memory fernet nacl redis memcached}
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
store_pids=()

cleanup() {
    stop_server
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
        cmd=("$bin/examples/server_$framework" --store "$store" --workers 1 --port 0)
        case $store in
        fernet | nacl) cmd+=(--key-hex "$KEY_HEX") ;;
        redis) cmd+=(--redis-url "$HTTP_SESSION_REDIS_URL") ;;
        memcached) cmd+=(--memcached "$HTTP_SESSION_MEMCACHED") ;;
        esac
        ;;
    peer-tower | peer-actix)
        local name=peer_tower_sessions
        [[ $framework == peer-tower ]] || name=peer_actix_session
        cmd=("$bin/$name" --store "$store" --port 0)
        [[ $store != redis ]] || cmd+=(--redis-url "$HTTP_SESSION_REDIS_URL")
        ;;
    *) die "unknown case $1" ;;
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

stop_server() {
    [[ -n $server_pid ]] || return 0
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# The NAME=VALUE of the first Set-Cookie of GET URL.
session_cookie() {
    curl -sS --max-time 5 -o /dev/null -D - "$1" | tr -d '\r' |
        awk 'tolower($1) == "set-cookie:" { split($2, a, ";"); print a[1]; exit }'
}

# --- load -----------------------------------------------------------------------

# Busy jiffies (user, nice, system, irq, softirq, steal) of CPU N; a process's jiffies
# (utime + stime, all its threads).
cpu_jiffies() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
pid_jiffies() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

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
    for pid in "$server_pid" "${store_pids[@]}"; do
        total=$((total + $(pid_jiffies "$pid")))
    done
    echo "$total"
}
both_cpus() { echo $(($(cpu_jiffies "$SERVER_CPU") + $(cpu_jiffies "$LOAD_CPU"))); }

# run_wrk SECONDS OUTFILE URL [COOKIE]: also records the server's CPU use and
# the CPU time that other processes took on the two CPUs meanwhile
# ("# server-cpu N% other M%", in % of one CPU).
run_wrk() {
    local seconds=$1 outfile=$2 url=$3 cookie=${4:-} header=() all0 ours0 srv0 start
    [[ -z $cookie ]] || header=(-H "Cookie: $cookie")
    echo "# $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >"$outfile"
    all0=$(both_cpus) ours0=$(our_jiffies) srv0=$(pid_jiffies "$server_pid") start=$(date +%s%N)
    timeout $((seconds + 30)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency "${header[@]}" "$url" >>"$outfile" 2>&1 ||
        die "wrk failed: $(tail -n 3 "$outfile")"
    awk -v all=$(($(both_cpus) - all0)) -v ours=$(($(our_jiffies) - ours0)) \
        -v srv=$(($(pid_jiffies "$server_pid") - srv0)) -v ns=$(($(date +%s%N) - start)) -v hz="$CLK_TCK" '
        BEGIN { s = ns / 1e9 * hz / 100; other = (all - ours) / s; if (other < 0) other = 0
            printf "# server-cpu %.0f%% other %.0f%%\n", srv / s, other }' >>"$outfile"
}
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

memcached_command() {
    local host=${HTTP_SESSION_MEMCACHED%:*} mport=${HTTP_SESSION_MEMCACHED##*:}
    (
        exec 3<>"/dev/tcp/$host/$mport"
        printf '%s\r\n' "$1" >&3
        while IFS= read -r -t 5 line <&3; do
            line=${line%$'\r'}
            echo "$line"
            [[ $line == END || $line == RESET || $line == ERROR ]] && break
        done
    )
}

counters_reset() {
    case $1 in
    redis) redis-cli -u "$HTTP_SESSION_REDIS_URL" config resetstat >/dev/null ;;
    memcached) memcached_command "stats reset" >/dev/null ;;
    esac
}

# Store commands since counters_reset, as "name=count ...".
counters_read() {
    case $1 in
    redis)
        redis-cli -u "$HTTP_SESSION_REDIS_URL" info commandstats | tr -d '\r' |
            awk -F'[_:=,]' '/^cmdstat_/ && $2 !~ /^(info|config)/ { printf "%s=%s ", $2, $4 }'
        ;;
    memcached)
        memcached_command stats |
            awk '$1 == "STAT" && ($2 == "cmd_get" || $2 == "cmd_set" || $2 == "cmd_touch" ||
                $2 == "delete_hits" || $2 == "delete_misses") && $3 > 0 { printf "%s=%s ", $2, $3 }'
        ;;
    esac
}

# "name=count ..." divided by REQUESTS, as "name/req ..." ("0" if none).
per_request() {
    local counts=$1 requests=$2
    awk -v c="$counts" -v r="$requests" 'BEGIN {
        n = split(c, kv, " "); out = ""
        for (i = 1; i <= n; i++) { split(kv[i], p, "="); if (p[1] == "") continue
            out = out (out == "" ? "" : " ") sprintf("%s %.2f", p[1], p[2] / r) }
        print out == "" ? "0" : out }'
}

# --- one case ---------------------------------------------------------------------

# measure CASE: runs the three workloads against one server in RUNS rounds
# (bare, W1, W2 in each), so the W1/bare and W2/bare ratios are taken from
# runs seconds apart rather than minutes: on a shared machine the speed
# drifts between minutes more than between seconds. Appends one line per
# workload to results.tsv: case workload rps p99_ms spread% failed other%
# store_commands_per_request ratio_to_bare, where rps and p99 are medians
# over the rounds, other% is the most CPU (in % of one CPU) that other
# processes took in any run, and ratio_to_bare is the median of the
# per-round ratios.
measure() {
    local case=$1 store=${1#*:} tag=${1/:/-} cookie i w try raw url base
    local -A rps=() p99=() other=() requests=() failed=() counts=() ratios=()
    server_command "$case"
    start_server "$tag" "${cmd[@]}"
    base=http://127.0.0.1:$port
    cookie=$(session_cookie "$base/incr")
    [[ -n $cookie ]] || die "$case: no session cookie from GET /incr"
    workload_url() { if [[ $1 == bare ]]; then echo "$base/bare"; else echo "$base/incr"; fi; }
    workload_cookie() { if [[ $1 == W2 ]]; then echo "$cookie"; fi; }
    wait_quiet
    for w in bare W1 W2; do
        run_wrk "$WARMUP" "$OUT/raw/$tag-$w.warmup.txt" "$(workload_url $w)" "$(workload_cookie $w)"
    done
    for ((i = 1; i <= RUNS; i++)); do
        local -A round=()
        for w in bare W1 W2; do
            raw=$OUT/raw/$tag-$w.$i.txt
            counters_reset "$store"
            for ((try = 0; try <= RETRIES; try++)); do
                wait_quiet
                run_wrk "$DURATION" "$raw" "$(workload_url $w)" "$(workload_cookie $w)"
                (($(wrk_other "$raw") <= 5)) && break
                cp "$raw" "$raw.polluted$try"
                ((try == RETRIES)) || log "$case $w round $i: other processes took $(wrk_other "$raw")% of a CPU; again"
            done
            round[$w]=$(wrk_rps "$raw")
            rps[$w]+="${round[$w]} "
            p99[$w]+="$(wrk_p99_ms "$raw") "
            other[$w]+="$(wrk_other "$raw") "
            requests[$w]=$((${requests[$w]:-0} + $(wrk_requests "$raw")))
            failed[$w]=$((${failed[$w]:-0} + $(wrk_failed "$raw")))
            counts[$w]+="$(counters_read "$store") "
        done
        for w in W1 W2; do
            ratios[$w]+="$(awk -v a="${round[$w]}" -v b="${round[bare]}" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }') "
        done
    done
    stop_server
    for w in bare W1 W2; do
        local cmds=- ratio=-
        case $store in
        redis | memcached) cmds=$(per_request "$(sum_counts "${counts[$w]}")" "${requests[$w]}") ;;
        esac
        # shellcheck disable=SC2086 # word splitting wanted: the lists hold numbers
        [[ $w == bare ]] || ratio=$(median ${ratios[$w]})
        ((${failed[$w]} == 0)) || log "WARNING: $case $w: ${failed[$w]} failed requests (see $OUT/raw/$tag-$w.*.txt)"
        # shellcheck disable=SC2086
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$w" "$(median ${rps[$w]})" \
            "$(median ${p99[$w]})" "$(spread ${rps[$w]})" "${failed[$w]}" \
            "$(printf '%s\n' ${other[$w]} | sort -g | tail -n1)" "$cmds" "$ratio" >>"$OUT/results.tsv"
        log "$(printf '%-18s %-4s req/s per round: %s (ratio to bare: %s); other processes: %s%%; store cmds/req: %s' \
            "$case" "$w" "${rps[$w]}" "${ratios[$w]:--}" "${other[$w]}" "$cmds")"
    done
}

# A list of "name=count" words summed by name.
sum_counts() {
    tr ' ' '\n' <<<"$1" | awk -F= 'NF == 2 { n[$1] += $2 } END { for (k in n) printf "%s=%s ", k, n[k] }'
}

all_cases() {
    local framework store
    for framework in axum actix warp; do
        for store in $STORES; do echo "$framework:$store"; done
    done
    echo peer-tower:memory peer-tower:redis peer-actix:cookie peer-actix:redis
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
    stop_server
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

# --- report -----------------------------------------------------------------------------

report() {
    local tsv=$OUT/results.tsv md=$OUT/results.md
    {
        echo "### Load (wrk -t1 -c$CONNECTIONS, median of $RUNS rounds x ${DURATION}s; server on CPU $SERVER_CPU, one worker; wrk on CPU $LOAD_CPU)"
        echo
        echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); loadavg at start $loadavg_start, at end $(cut -d' ' -f1-3 /proc/loadavg)."
        echo
        [[ -s $tsv ]] && awk -F'\t' '
            { key = $1 SUBSEP $2; rps[key] = $3; p99[key] = $4; spr[key] = $5; bad[key] = $6; oth[key] = $7; cmd[key] = $8; rat[key] = $9
              if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
            function cell(c, w) { k = c SUBSEP w; if (!(k in rps)) return "-"
                return sprintf("%d%s%s%s | %.2f", rps[k], (spr[k] > 10 ? " ±" spr[k] "%" : ""), (oth[k] > 5 ? " (o" oth[k] "%)" : ""),
                    (bad[k] > 0 ? " !" bad[k] " failed" : ""), p99[k]) }
            function ratio(r) { return (r > 0) ? sprintf("%.2f", r) : "-" }
            END {
                print "| server | store | bare req/s | p99 ms | W1 req/s | p99 ms | W2 req/s | p99 ms | W1/bare | W2/bare | store cmds/req bare; W1; W2 |"
                print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
                for (i = 1; i <= n; i++) { c = order[i]; split(c, fs, ":")
                    cmds = (cmd[c SUBSEP "W1"] == "-" || cmd[c SUBSEP "W1"] == "") ? "" : cmd[c SUBSEP "bare"] "; " cmd[c SUBSEP "W1"] "; " cmd[c SUBSEP "W2"]
                    printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", fs[1], fs[2], cell(c, "bare"), cell(c, "W1"), cell(c, "W2"),
                        ratio(rat[c SUBSEP "W1"]), ratio(rat[c SUBSEP "W2"]), cmds }
                print ""
                print "req/s and p99: medians over the rounds. W1/bare, W2/bare: the median of the per-round ratios (each round runs bare, W1 and W2 back to back against one server). ±N%: the runs spread more than N% around the median. (oN%): in one run other processes took N% of a CPU."
                print ""
                print "#### Targets"
                print ""
                print "| target | measured | met |"
                print "|---|---:|---|"
                split("axum actix warp", fw, " ")
                for (i = 1; i <= 3; i++) {
                    f = fw[i]
                    target("W2/bare " f "+fernet >= 0.85", rat[f ":fernet" SUBSEP "W2"], 1, 0.85)
                    target("W2/bare " f "+memory >= 0.9", rat[f ":memory" SUBSEP "W2"], 1, 0.9)
                }
                split("W1 W2", ws, " ")
                for (j = 1; j <= 2; j++) { w = ws[j]
                    target(w " axum+memory / tower-sessions memory >= 1.3", rps["axum:memory" SUBSEP w], rps["peer-tower:memory" SUBSEP w], 1.3)
                    target(w " axum+redis / tower-sessions redis >= 1.3", rps["axum:redis" SUBSEP w], rps["peer-tower:redis" SUBSEP w], 1.3)
                    target(w " actix+fernet / actix-session cookie >= 1.3", rps["actix:fernet" SUBSEP w], rps["peer-actix:cookie" SUBSEP w], 1.3)
                    target(w " actix+nacl / actix-session cookie >= 1.3", rps["actix:nacl" SUBSEP w], rps["peer-actix:cookie" SUBSEP w], 1.3)
                    target(w " actix+redis / actix-session redis >= 1.3", rps["actix:redis" SUBSEP w], rps["peer-actix:redis" SUBSEP w], 1.3)
                }
            }
            function target(name, a, b, min) {
                if (!(a > 0 && b > 0)) return
                printf "| %s | %.2f | %s |\n", name, a / b, (a / b >= min ? "yes" : "**no**") }
        ' "$tsv"
        echo
        [[ ! -f $OUT/memcheck.md ]] || cat "$OUT/memcheck.md"
        echo "Command: \`$command_line\`"
    } >"$md"
    cat "$md"
}

# --- main ---------------------------------------------------------------------------------

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
(($(nproc) >= 2)) || log "WARNING: fewer than 2 CPUs; server and load will share one"

install_tools
build
scripts/services.sh start "$services"
# shellcheck source=/dev/null
. "$services/env"
# Redis and memcached share the load's CPU: the server's CPU is its own.
store_pids=("$(<"$services/redis.pid")" "$(<"$services/memcached.pid")")
for pid in "${store_pids[@]}"; do
    taskset -a -p -c "$LOAD_CPU" "$pid" >/dev/null
done
log "output in $OUT"

: >"$OUT/results.tsv"
if [[ $MEMCHECK != only ]]; then
    for case in ${CASES:-$(all_cases)}; do
        measure "$case"
    done
fi
[[ $MEMCHECK == 0 ]] || memcheck
report
