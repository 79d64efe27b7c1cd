#!/usr/bin/env bash
# Run throwaway Redis, Redis Cluster, Redis Sentinel and memcached servers on
# loopback for the test suite.
#
#   scripts/services.sh install             install redis-server, redis-tools, redis-sentinel, memcached (apt) if missing
#   scripts/services.sh install-browser     install chromium + chromium-driver (apt) if missing
#   scripts/services.sh start DIR           start all of the below on free 127.0.0.1 ports; write DIR/env
#   scripts/services.sh start-cluster DIR   only a Redis Cluster (3 masters, 3 replicas); write DIR/cluster.env
#   scripts/services.sh start-sentinel DIR  only a master, a replica and 3 sentinels; write DIR/sentinel.env
#   scripts/services.sh start-ring DIR [N]  only N memcached servers (default 3); write DIR/ring.env
#   scripts/services.sh kill-node DIR NAME [SIGNAL]  signal one recorded process (default KILL), wait for it to go
#   scripts/services.sh restart-node DIR NAME        start a stopped process again, same port, same config
#   scripts/services.sh stop DIR            stop exactly the pids recorded in DIR (every layout below)
#   scripts/services.sh status DIR          print pids/ports/roles and whether each answers
#
# After `start`, `source DIR/env` exports:
#   HTTP_SESSION_REDIS_URL=redis://127.0.0.1:PORT/
#   HTTP_SESSION_MEMCACHED=127.0.0.1:PORT
#   HTTP_SESSION_REDIS_CLUSTER=redis://127.0.0.1:P1,...,redis://127.0.0.1:P6   (masters first)
#   HTTP_SESSION_REDIS_SENTINEL=mymaster@redis://127.0.0.1:S1,redis://127.0.0.1:S2,redis://127.0.0.1:S3
#   HTTP_SESSION_MEMCACHED_RING=127.0.0.1:M1,127.0.0.1:M2,127.0.0.1:M3
# start-cluster, start-sentinel and start-ring write only their own variable,
# to DIR/cluster.env, DIR/sentinel.env and DIR/ring.env (`start` writes those
# too). Tests that kill and restart servers start such PRIVATE instances in a
# DIR of their own, so the shared ones of `start` are never disturbed.
#
# Setting (environment): SERVICES_REDIS_MAXMEMORY (default 32mb), the
# maxmemory of the cluster and Sentinel Redis servers (noeviction: a full one
# refuses writes).
#
# Layout of DIR:
#   DIR/env, DIR/cluster.env, DIR/sentinel.env, DIR/ring.env   see above
#   DIR/redis.{pid,port,log}       the single Redis of `start`
#   DIR/memcached.{pid,port,log}   the single memcached of `start`
#   DIR/cluster/node1..node6/      cluster nodes; node1-3 are the masters when created
#   DIR/cluster/create.log         output of redis-cli --cluster create
#   DIR/sentinel/master/           the monitored master when created ...
#   DIR/sentinel/replica/          ... and its replica (roles swap on failover)
#   DIR/sentinel/sentinel1..3/     the sentinels (master name mymaster, quorum 2)
#   DIR/ring/mc1..mcN/             the memcached servers of the ring
# Each process directory PD above holds:
#   PD/kind   redis, sentinel or memcached
#   PD/port   its TCP port (a cluster node also listens on port+10000, the bus)
#   PD/pid    its pid while it runs (removed by stop and kill-node)
#   PD/log    what it printed
#   PD/redis.conf (a cluster node keeps PD/nodes.conf beside it),
#   PD/sentinel.conf (the sentinel rewrites it), or PD/memcached.args
# NAME (kill-node, restart-node) is a process directory relative to DIR, such
# as cluster/node2, sentinel/master, sentinel/sentinel3 or ring/mc1; or redis
# or memcached for the singles; or a port number recorded in DIR.
#
# Servers listen on 127.0.0.1 only, keep nothing on disk but their config
# (no RDB, no AOF), and log to DIR.
set -euo pipefail
shopt -s nullglob

readonly START_TIMEOUT_S=10    # how long each server gets to answer
readonly PORT_TRIES=5          # fresh ports tried per server if one is taken
readonly STOP_TIMEOUT_S=10     # SIGTERM, then SIGKILL
readonly CLUSTER_TIMEOUT_S=30  # cluster creation, then all slots ok everywhere
readonly SENTINEL_TIMEOUT_S=30 # sentinels seeing master, replica and each other
readonly CLUSTER_NODE_TIMEOUT_MS=1500
readonly SENTINEL_NAME=mymaster
readonly SENTINEL_QUORUM=2
readonly SENTINEL_DOWN_AFTER_MS=1000
readonly SENTINEL_FAILOVER_TIMEOUT_MS=5000
# Cluster and Sentinel Redis (the single one is unbounded); SERVICES_REDIS_MAXMEMORY
# overrides it (the load benchmark's W1 rounds make a few hundred thousand sessions).
readonly REDIS_MAXMEMORY=${SERVICES_REDIS_MAXMEMORY:-32mb}
readonly RING_MEMCACHED_MB=16
readonly RING_DEFAULT_N=3

die() {
    echo "services.sh: error: $*" >&2
    exit 1
}
log() { echo "services.sh: $*" >&2; }

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

# Pidfiles of the processes this invocation started; if it fails, they are
# stopped again (see on_exit), so a failed start leaves nothing running.
STARTED=()
on_exit() {
    local rc=$?
    if [[ $rc -ne 0 && ${#STARTED[@]} -gt 0 ]]; then
        log "failed; stopping the ${#STARTED[@]} process(es) this run started"
        stop_pidfiles "${STARTED[@]}" || true
    fi
    exit "$rc"
}

# --- install ----------------------------------------------------------------

# apt_install PKG...: apt-get update, then install PKG... (root or sudo).
apt_install() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and sudo is missing; install $* by hand"
        sudo=(sudo)
    fi
    log "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Wait (bounded) for another apt/dpkg run instead of failing at once.
    local lock=(-o DPkg::Lock::Timeout=300)
    "${sudo[@]}" apt-get "${lock[@]}" update -qq || die "apt-get update failed"
    "${sudo[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "$@" >/dev/null ||
        die "apt-get install $* failed"
}

cmd_install() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null ||
        ! command -v redis-sentinel >/dev/null || ! command -v memcached >/dev/null; then
        apt_install redis-server redis-tools redis-sentinel memcached
    fi
    local c
    for c in redis-server redis-cli redis-sentinel memcached; do
        command -v "$c" >/dev/null || die "$c still missing after install"
    done
    # `redis-cli --cluster help` exits 1 even where it exists: read what it says.
    [[ $(redis-cli --cluster help 2>&1 || true) == *create* ]] || die "redis-cli has no --cluster (needs Redis >= 5)"
}

cmd_install_browser() {
    if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
        apt_install chromium chromium-driver
    fi
    [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium still missing after install"
    [[ -x /usr/bin/chromedriver ]] || die "/usr/bin/chromedriver still missing after install"
}

# --- helpers ----------------------------------------------------------------

# Print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    # Fallback: random high port that nothing accepts connections on.
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "could not find a free loopback port"
}

# Print a port P <= 55535 such that P and P+10000 (a cluster node's bus) are
# both free on 127.0.0.1 right now.
free_port_pair() {
    if command -v python3 >/dev/null; then
        python3 -c 'import random, socket, sys
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for i in range(200):
    if i < 100:  # a port the kernel picks, as free_port does ...
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
    else:  # ... or, if its range is too high, one of our own
        p = random.randint(20000, 55535)
    if p <= 55535 and free(p) and free(p + 10000):
        print(p)
        sys.exit(0)
sys.exit(1)' && return
        die "could not find a free loopback port whose +10000 is free too"
    fi
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 35000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "could not find a free loopback port whose +10000 is free too"
}

# True if PID is a live (non-zombie) process whose command line mentions NAME.
pid_is() {
    local pid=$1 name=$2
    [[ $pid =~ ^[0-9]+$ ]] && child_runs "$pid" || return 1
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"$name"* ]]
}

# proc_state PID: print "STATE PPID" of process PID; fails if there is none.
proc_state() {
    local stat
    { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
    stat=${stat##*) } # the command name in parentheses may hold spaces
    printf '%s\n' "${stat% "${stat#* * }"}"
}

# True while process PID has not exited (nor is a zombie). For a child this
# script just started, this is the test: before it has exec'd its server
# its command line is still this script's, which pid_is would not accept.
child_runs() {
    local state
    state=$(proc_state "$1") || return 1
    [[ ${state%% *} != Z ]]
}

# ours PID NAME: PID is NAME's server, or a child of this script that has not
# exec'd one yet (a start that failed early must still end it).
ours() {
    local state
    pid_is "$1" "$2" && return 0
    [[ $1 =~ ^[0-9]+$ ]] && state=$(proc_state "$1") || return 1
    [[ ${state%% *} != Z && ${state#* } == "$$" ]]
}

# rcli PORT ARGS...: redis-cli against 127.0.0.1:PORT that cannot hang.
rcli() {
    local port=$1
    shift
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

redis_answers() {
    [[ $(rcli "$1" ping) == PONG ]]
}

memcached_answers() {
    # Speak the text protocol over bash's /dev/tcp: "version" -> "VERSION x.y.z".
    local reply
    reply=$(
        exec 2>/dev/null # silence "connection refused" while it starts
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'version\r\n' >&3
        IFS= read -r -t 2 line <&3 || exit 1
        printf '%s' "$line"
    ) || return 1
    [[ $reply == VERSION* ]]
}

# wait_up NAME PID PORT CHECKFN [LABEL]: 0 once CHECKFN PORT succeeds, 1 if
# PID died (worth retrying on another port), 2 if the timeout passed.
wait_up() {
    local name=$1 pid=$2 port=$3 check=$4 label=${5:-$1} i
    for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
        if "$check" "$port"; then
            return 0
        fi
        if ! child_runs "$pid"; then
            log "$label (pid $pid) exited before answering on port $port"
            return 1
        fi
        sleep 0.1
    done
    log "$label (pid $pid) did not answer on port $port within ${START_TIMEOUT_S}s"
    return 2
}

# wait_for SECONDS CMD...: 0 as soon as CMD succeeds (polled every 0.2 s), 1
# if it still fails after SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# The process name that a pidfile's pid must show (pid_is) before it is
# signalled: redis-server and redis-sentinel both say "redis".
pidfile_match() {
    case $1 in
    */memcached.pid) echo memcached ;;
    */redis.pid) echo redis ;;
    *)
        if [[ $(cat "$(dirname "$1")/kind" 2>/dev/null) == memcached ]]; then
            echo memcached
        else
            echo redis
        fi
        ;;
    esac
}

# stop_pidfiles FILE...: SIGTERM every recorded pid that still is its server
# (or this script's child about to become it),
# wait for all to go, SIGKILL the stragglers after STOP_TIMEOUT_S; remove FILE.
stop_pidfiles() {
    local f pid i j sig left=0 files=() pids=() names=()
    for f in "$@"; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        files+=("$f")
        pids+=("$pid")
        names+=("$(pidfile_match "$f")")
        if ours "$pid" "${names[-1]}"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for sig in KILL none; do
        for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
            left=0
            for j in "${!pids[@]}"; do
                if ours "${pids[j]}" "${names[j]}"; then
                    left=1
                    break
                fi
            done
            ((left)) || break
            sleep 0.1
        done
        ((left)) || break
        [[ $sig != none ]] || break
        for j in "${!pids[@]}"; do
            if ours "${pids[j]}" "${names[j]}"; then
                log "${names[j]} (pid ${pids[j]}, ${files[j]}) ignored SIGTERM; sending SIGKILL"
                kill -KILL "${pids[j]}" 2>/dev/null || true
            fi
        done
    done
    for j in "${!pids[@]}"; do
        ! ours "${pids[j]}" "${names[j]}" || die "${names[j]} (pid ${pids[j]}, ${files[j]}) would not die"
    done
    rm -f "${files[@]}"
}

# stop_pid NAME PIDFILE: stop_pidfiles for one file (NAME is implied by it).
stop_pid() { stop_pidfiles "$2"; }

# True if any process recorded under the process directories of LAYOUT_DIR
# (DIR/cluster, DIR/sentinel, DIR/ring) still runs.
layout_running() {
    local f
    for f in "$1"/*/pid; do
        if pid_is "$(<"$f")" "$(pidfile_match "$f")"; then
            return 0
        fi
    done
    return 1
}

# fresh_layout DIR/LAYOUT: refuse if something of it runs; else empty it.
fresh_layout() {
    local l=$1
    if layout_running "$l"; then
        die "processes from $l still run; run: $0 stop $(dirname "$l")"
    fi
    rm -rf "$l"
    mkdir -p "$l"
}

# write_env FILE LINE...: write FILE at once (readers never see half of it).
write_env() {
    local file=$1
    shift
    printf '%s\n' "$@" >"$file.tmp"
    mv -f "$file.tmp" "$file"
}

# --- the single Redis and memcached of `start` (DIR/NAME.{pid,port,log}) -----

# Launchers start the server in the background and record its pid in DIR/NAME.pid.
# stdin/stdout/stderr are detached so callers using $(...) do not hang.
launch_redis() {
    local dir=$1 port=$2
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize no --protected-mode yes --dir "$dir" \
        </dev/null >>"$dir/redis.log" 2>&1 &
    echo $! >"$dir/redis.pid"
}

launch_memcached() {
    local dir=$1 port=$2 user=()
    # memcached refuses to run as root unless told which user to be.
    [[ $(id -u) -ne 0 ]] || user=(-u root)
    memcached -l 127.0.0.1 -p "$port" -U 0 -m 64 "${user[@]}" \
        </dev/null >>"$dir/memcached.log" 2>&1 &
    echo $! >"$dir/memcached.pid"
}

# start_one NAME DIR CHECKFN LAUNCHFN: start a server on a free port, retrying
# with a new port if it exits early (e.g. the port was taken meanwhile); a
# server that stays up but never answers fails at once.
# Records the pid in DIR/NAME.pid and the port in DIR/NAME.port.
start_one() {
    local name=$1 dir=$2 check=$3 launch=$4 port pid try rc
    for ((try = 1; try <= PORT_TRIES; try++)); do
        port=$(free_port)
        "$launch" "$dir" "$port"
        pid=$(<"$dir/$name.pid")
        STARTED+=("$dir/$name.pid")
        rc=0
        wait_up "$name" "$pid" "$port" "$check" || rc=$?
        if [[ $rc -eq 0 ]]; then
            echo "$port" >"$dir/$name.port"
            return 0
        fi
        stop_pid "$name" "$dir/$name.pid"
        if [[ $rc -eq 2 ]]; then
            tail -n 20 "$dir/$name.log" >&2 || true
            die "$name did not come up within ${START_TIMEOUT_S}s (see $dir/$name.log)"
        fi
        log "retrying $name on another port (try $try/$PORT_TRIES); log: $dir/$name.log"
    done
    tail -n 20 "$dir/$name.log" >&2 || true
    die "$name did not come up after $PORT_TRIES tries (see $dir/$name.log)"
}

# --- process directories (DIR/LAYOUT/NAME/{kind,port,pid,log,config}) --------

# Config writers: CONFFN PD PORT [ARGS...] writes PD's config for PORT.
write_redis_conf() {
    local pd=$1 port=$2
    shift 2
    {
        echo "bind 127.0.0.1"
        echo "port $port"
        echo "protected-mode yes"
        echo "daemonize no"
        echo "dir \"$pd\""
        echo 'save ""'
        echo "appendonly no"
        echo "maxmemory $REDIS_MAXMEMORY"
        echo "maxmemory-policy noeviction"
        # Full syncs stream the RDB at once instead of waiting 5 s for more
        # replicas, and an empty replica loads it without a dump.rdb; a
        # SIGTERM does not wait for lagging replicas.
        echo "repl-diskless-sync yes"
        echo "repl-diskless-sync-delay 0"
        echo "repl-diskless-load on-empty-db"
        echo "shutdown-timeout 0"
        printf '%s\n' "$@"
    } >"$pd/redis.conf"
}

conf_redis() { write_redis_conf "$1" "$2"; }

conf_replica() { write_redis_conf "$1" "$2" "replicaof 127.0.0.1 $3"; }

# cluster-require-full-coverage no: while a failed master's replica is not
# promoted yet, the other masters keep serving their slots (with the
# default, every node answers CLUSTERDOWN from the moment the master is
# flagged FAIL until the promotion, about 0.6 s here).
conf_cluster_node() {
    write_redis_conf "$1" "$2" \
        "cluster-enabled yes" \
        "cluster-config-file nodes.conf" \
        "cluster-node-timeout $CLUSTER_NODE_TIMEOUT_MS" \
        "cluster-replica-validity-factor 0" \
        "cluster-require-full-coverage no"
}

# The sentinel rewrites this file (its id, the replicas and sentinels it
# found, failovers), so it must stay writable.
conf_sentinel() {
    local pd=$1 port=$2 mport=$3
    cat >"$pd/sentinel.conf" <<EOF
bind 127.0.0.1
port $port
daemonize no
dir "$pd"
sentinel monitor $SENTINEL_NAME 127.0.0.1 $mport $SENTINEL_QUORUM
sentinel down-after-milliseconds $SENTINEL_NAME $SENTINEL_DOWN_AFTER_MS
sentinel failover-timeout $SENTINEL_NAME $SENTINEL_FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $SENTINEL_NAME 1
EOF
}

conf_memcached() {
    echo "-l 127.0.0.1 -p $2 -U 0 -m ${3:-$RING_MEMCACHED_MB}" >"$1/memcached.args"
}

# launch_pd PD: start PD's server in the background from its config; record
# its pid in PD/pid.
launch_pd() {
    local pd=$1 kind args user=()
    kind=$(<"$pd/kind")
    case $kind in
    redis)
        redis-server "$pd/redis.conf" </dev/null >>"$pd/log" 2>&1 &
        ;;
    sentinel)
        if command -v redis-sentinel >/dev/null; then
            redis-sentinel "$pd/sentinel.conf" </dev/null >>"$pd/log" 2>&1 &
        else
            redis-server "$pd/sentinel.conf" --sentinel </dev/null >>"$pd/log" 2>&1 &
        fi
        ;;
    memcached)
        read -ra args <"$pd/memcached.args"
        # memcached refuses to run as root unless told which user to be.
        [[ $(id -u) -ne 0 ]] || user=(-u root)
        memcached "${args[@]}" "${user[@]}" </dev/null >>"$pd/log" 2>&1 &
        ;;
    *) die "unknown kind '$kind' in $pd/kind" ;;
    esac
    echo $! >"$pd/pid"
    STARTED+=("$pd/pid")
}

kind_check() {
    case $1 in
    memcached) echo memcached_answers ;;
    *) echo redis_answers ;;
    esac
}

# start_pd PD KIND PORTFN CONFFN [ARGS...]: create process directory PD and
# start a KIND server in it on a port from PORTFN with the config CONFFN PD
# PORT ARGS... writes; retried on a new port if the server exits early.
start_pd() {
    local pd=$1 kind=$2 portfn=$3 conffn=$4 port pid try rc check
    shift 4
    check=$(kind_check "$kind")
    mkdir -p "$pd"
    echo "$kind" >"$pd/kind"
    for ((try = 1; try <= PORT_TRIES; try++)); do
        port=$("$portfn")
        rm -f "$pd/nodes.conf"
        "$conffn" "$pd" "$port" "$@"
        echo "$port" >"$pd/port"
        launch_pd "$pd"
        pid=$(<"$pd/pid")
        rc=0
        wait_up "$(pidfile_match "$pd/pid")" "$pid" "$port" "$check" "$kind in $pd" || rc=$?
        [[ $rc -ne 0 ]] || return 0
        stop_pidfiles "$pd/pid"
        if [[ $rc -eq 2 ]]; then
            tail -n 20 "$pd/log" >&2 || true
            die "$kind in $pd did not come up within ${START_TIMEOUT_S}s (see $pd/log)"
        fi
        log "retrying $kind in $pd on another port (try $try/$PORT_TRIES); log: $pd/log"
    done
    tail -n 20 "$pd/log" >&2 || true
    die "$kind in $pd did not come up after $PORT_TRIES tries (see $pd/log)"
}

# --- Redis Cluster: DIR/cluster/node1..6 -------------------------------------

cluster_launch() {
    local c=$1/cluster i
    fresh_layout "$c"
    for i in 1 2 3 4 5 6; do
        start_pd "$c/node$i" redis free_port_pair conf_cluster_node
    done
}

# True once every node says cluster_state:ok, all 16384 slots ok, 6 known
# nodes, three nodes are replicas whose link to their master is up, and
# each master streams to its replica. (A node named a replica by `--cluster
# create` may still be a master without slots for a second or so: data
# written to its master meanwhile would not be on the replica.)
cluster_ready() {
    local c=$1 pd port info replicas=0 fed=0
    for pd in "$c"/node*; do
        port=$(<"$pd/port")
        info=$(rcli "$port" cluster info | tr -d '\r') || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
        grep -qx 'cluster_known_nodes:6' <<<"$info" || return 1
        info=$(rcli "$port" info replication | tr -d '\r') || return 1
        if grep -qx 'role:slave' <<<"$info"; then
            grep -qx 'master_link_status:up' <<<"$info" || return 1
            replicas=$((replicas + 1))
        elif grep -q '^slave0:.*state=online' <<<"$info"; then
            fed=$((fed + 1))
        fi
    done
    [[ $replicas -eq 3 && $fed -eq 3 ]]
}

cluster_finish() {
    local dir=$1 c=$1/cluster pd port addrs=() masters=() replicas=() urls
    for pd in "$c"/node*; do
        addrs+=("127.0.0.1:$(<"$pd/port")")
    done
    if ! timeout "$CLUSTER_TIMEOUT_S" redis-cli --cluster create "${addrs[@]}" \
        --cluster-replicas 1 --cluster-yes </dev/null >"$c/create.log" 2>&1; then
        tail -n 20 "$c/create.log" >&2 || true
        die "redis-cli --cluster create failed or took over ${CLUSTER_TIMEOUT_S}s (see $c/create.log and $c/node*/log)"
    fi
    if ! wait_for "$CLUSTER_TIMEOUT_S" cluster_ready "$c"; then
        for pd in "$c"/node*; do
            log "$pd: $(rcli "$(<"$pd/port")" cluster info | tr -d '\r' | grep -E '^cluster_(state|slots_ok|known_nodes):' | tr '\n' ' ')"
        done
        die "redis cluster in $c not ok on every node within ${CLUSTER_TIMEOUT_S}s (see $c/create.log and $c/node*/log)"
    fi
    for pd in "$c"/node*; do
        port=$(<"$pd/port")
        if [[ $(rcli "$port" role | head -n 1) == master ]]; then
            masters+=("redis://127.0.0.1:$port")
        else
            replicas+=("redis://127.0.0.1:$port")
        fi
    done
    urls=$(IFS=,; echo "${masters[*]},${replicas[*]}")
    write_env "$dir/cluster.env" "export HTTP_SESSION_REDIS_CLUSTER=$urls"
    log "redis cluster: masters ${masters[*]#redis://}, replicas ${replicas[*]#redis://}; env in $dir/cluster.env"
}

# --- Redis Sentinel: DIR/sentinel/{master,replica,sentinel1..3} ----------------

replica_synced() {
    rcli "$1" info replication | tr -d '\r' | grep -qx 'master_link_status:up'
}

sentinel_launch() {
    local s=$1/sentinel mport i
    fresh_layout "$s"
    start_pd "$s/master" redis free_port conf_redis
    mport=$(<"$s/master/port")
    start_pd "$s/replica" redis free_port conf_replica "$mport"
    # Sentinels find replicas in the master's INFO, which they ask for at
    # once on connecting (then every 10 s): start them once the replica is in.
    wait_for "$START_TIMEOUT_S" replica_synced "$(<"$s/replica/port")" ||
        die "replica in $s/replica did not sync with 127.0.0.1:$mport within ${START_TIMEOUT_S}s (see $s/replica/log and $s/master/log)"
    for i in 1 2 3; do
        start_pd "$s/sentinel$i" sentinel free_port conf_sentinel "$mport"
    done
}

# sentinel_field PORT FIELD: FIELD of `SENTINEL MASTER mymaster` on PORT.
sentinel_field() {
    rcli "$1" sentinel master "$SENTINEL_NAME" | tr -d '\r' |
        awk -v want="$2" 'NR % 2 == 1 { key = $0; next } key == want { print; exit }'
}

# True once every sentinel reports the master (not down), one replica and
# the two other sentinels.
sentinels_ready() {
    local s=$1 mport=$2 pd port out
    for pd in "$s"/sentinel*; do
        port=$(<"$pd/port")
        out=$(rcli "$port" sentinel master "$SENTINEL_NAME" | tr -d '\r') || return 1
        out=$(awk 'NR % 2 == 1 { key = $0; next } { v[key] = $0 }
            END { print v["flags"] "|" v["port"] "|" v["num-slaves"] "|" v["num-other-sentinels"] }' <<<"$out")
        [[ $out == "master|$mport|1|2" ]] || return 1
    done
}

sentinel_finish() {
    local dir=$1 s=$1/sentinel mport pd urls=()
    mport=$(<"$s/master/port")
    if ! wait_for "$SENTINEL_TIMEOUT_S" sentinels_ready "$s" "$mport"; then
        for pd in "$s"/sentinel*; do
            log "$pd: flags=$(sentinel_field "$(<"$pd/port")" flags) num-slaves=$(sentinel_field "$(<"$pd/port")" num-slaves) num-other-sentinels=$(sentinel_field "$(<"$pd/port")" num-other-sentinels)"
        done
        die "sentinels in $s did not all see master 127.0.0.1:$mport, its replica and each other within ${SENTINEL_TIMEOUT_S}s (see $s/*/log)"
    fi
    for pd in "$s"/sentinel*; do
        urls+=("redis://127.0.0.1:$(<"$pd/port")")
    done
    write_env "$dir/sentinel.env" "export HTTP_SESSION_REDIS_SENTINEL=$SENTINEL_NAME@$(IFS=,; echo "${urls[*]}")"
    log "redis sentinel: master 127.0.0.1:$mport, replica 127.0.0.1:$(<"$s/replica/port"), sentinels ${urls[*]#redis://}; env in $dir/sentinel.env"
}

# --- memcached ring: DIR/ring/mc1..N --------------------------------------------

ring_start() {
    local dir=$1 n=$2 r=$1/ring i addrs=()
    fresh_layout "$r"
    for ((i = 1; i <= n; i++)); do
        start_pd "$r/mc$i" memcached free_port conf_memcached
        addrs+=("127.0.0.1:$(<"$r/mc$i/port")")
    done
    write_env "$dir/ring.env" "export HTTP_SESSION_MEMCACHED_RING=$(IFS=,; echo "${addrs[*]}")"
    log "memcached ring: ${addrs[*]}; env in $dir/ring.env"
}

# --- commands ---------------------------------------------------------------

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || die "$c not found; run: $0 install"
    done
}

# absdir DIR: create DIR and print its absolute path.
absdir() {
    mkdir -p "$1"
    (cd "$1" && pwd)
}

cmd_start() {
    local dir name l
    need redis-server redis-cli memcached timeout
    dir=$(absdir "$1")
    for name in redis memcached; do
        if [[ -f $dir/$name.pid ]] && pid_is "$(<"$dir/$name.pid")" "$name"; then
            die "$name already running from $dir (pid $(<"$dir/$name.pid")); run: $0 stop $dir"
        fi
        rm -f "$dir/$name.pid" "$dir/$name.port"
    done
    for l in cluster sentinel ring; do
        ! layout_running "$dir/$l" || die "processes from $dir/$l still run; run: $0 stop $dir"
    done
    rm -f "$dir/env" "$dir/cluster.env" "$dir/sentinel.env" "$dir/ring.env"

    start_one redis "$dir" redis_answers launch_redis
    start_one memcached "$dir" memcached_answers launch_memcached
    log "redis on 127.0.0.1:$(<"$dir/redis.port") (pid $(<"$dir/redis.pid")), memcached on 127.0.0.1:$(<"$dir/memcached.port") (pid $(<"$dir/memcached.pid"))"
    # Start every process first, then let cluster creation and the sentinels'
    # discovery of each other overlap.
    cluster_launch "$dir"
    sentinel_launch "$dir"
    ring_start "$dir" "$RING_DEFAULT_N"
    cluster_finish "$dir"
    sentinel_finish "$dir"

    {
        echo "export HTTP_SESSION_REDIS_URL=redis://127.0.0.1:$(<"$dir/redis.port")/"
        echo "export HTTP_SESSION_MEMCACHED=127.0.0.1:$(<"$dir/memcached.port")"
        cat "$dir/cluster.env" "$dir/sentinel.env" "$dir/ring.env"
    } >"$dir/env.tmp"
    mv -f "$dir/env.tmp" "$dir/env"
    STARTED=()
    log "all up; env in $dir/env"
}

cmd_start_cluster() {
    local dir
    need redis-server redis-cli timeout
    dir=$(absdir "$1")
    rm -f "$dir/cluster.env"
    cluster_launch "$dir"
    cluster_finish "$dir"
    STARTED=()
}

cmd_start_sentinel() {
    local dir
    need redis-server redis-cli timeout
    dir=$(absdir "$1")
    rm -f "$dir/sentinel.env"
    sentinel_launch "$dir"
    sentinel_finish "$dir"
    STARTED=()
}

cmd_start_ring() {
    local dir n=${2:-$RING_DEFAULT_N}
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "start-ring: N must be a positive number, not '$n'"
    need memcached
    dir=$(absdir "$1")
    rm -f "$dir/ring.env"
    ring_start "$dir" "$n"
    STARTED=()
}

# resolve DIR NAME: print the pidfile prefix of NAME ("DIR/redis." for a
# single, "DIR/cluster/node2/" for a process directory); see the header.
resolve() {
    local dir=$1 name=$2 f
    case $name in
    redis | memcached)
        [[ -f $dir/$name.port ]] || die "no $name recorded in $dir ($dir/$name.port missing)"
        echo "$dir/$name."
        ;;
    *[!0-9]*)
        name=${name%/}
        [[ $name != *..* && -f $dir/$name/kind && -f $dir/$name/port ]] ||
            die "no process directory $dir/$name (expected e.g. cluster/node1, sentinel/master, sentinel/sentinel1, ring/mc1)"
        echo "$dir/$name/"
        ;;
    *)
        for f in "$dir"/*/*/port "$dir"/redis.port "$dir"/memcached.port; do
            if [[ -f $f && $(<"$f") == "$name" ]]; then
                echo "${f%port}" # DIR/LAYOUT/NAME/ or DIR/redis.
                return 0
            fi
        done
        die "no process with port $name recorded in $dir"
        ;;
    esac
}

cmd_kill_node() {
    local dir=$1 sig=${3:-KILL} p pid match i
    dir=$(cd "$dir" 2>/dev/null && pwd) || die "no such directory: $1"
    p=$(resolve "$dir" "$2")
    [[ -f ${p}pid ]] || die "${p%[./]} is not running (no ${p}pid)"
    pid=$(<"${p}pid")
    match=$(pidfile_match "${p}pid")
    pid_is "$pid" "$match" || die "${p%[./]} is not running (pid $pid is gone)"
    kill -s "$sig" "$pid" || die "could not send SIG$sig to pid $pid"
    for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
        pid_is "$pid" "$match" || break
        sleep 0.1
    done
    ! pid_is "$pid" "$match" || die "pid $pid (${p%[./]}) still runs ${STOP_TIMEOUT_S}s after SIG$sig"
    rm -f "${p}pid"
    log "killed ${p%[./]} (pid $pid, port $(<"${p}port")) with SIG$sig"
}

cmd_restart_node() {
    local dir=$1 p pid port match rc
    dir=$(cd "$dir" 2>/dev/null && pwd) || die "no such directory: $1"
    p=$(resolve "$dir" "$2")
    match=$(pidfile_match "${p}pid")
    if [[ -f ${p}pid ]] && pid_is "$(<"${p}pid")" "$match"; then
        die "${p%[./]} still runs (pid $(<"${p}pid")); kill it first, e.g.: $0 kill-node $dir $2"
    fi
    port=$(<"${p}port")
    case $p in
    */redis.) launch_redis "$dir" "$port" ;;
    */memcached.) launch_memcached "$dir" "$port" ;;
    *) launch_pd "$p" ;;
    esac
    pid=$(<"${p}pid")
    rc=0
    wait_up "$match" "$pid" "$port" "$( [[ $match == memcached ]] && echo memcached_answers || echo redis_answers)" "${p%[./]}" || rc=$?
    if [[ $rc -ne 0 ]]; then
        tail -n 20 "${p}log" >&2 || true
        die "${p%[./]} did not come back on port $port (see ${p}log)"
    fi
    STARTED=()
    log "restarted ${p%[./]} (pid $pid, port $port)"
}

cmd_stop() {
    local dir=$1
    [[ -d $dir ]] || return 0
    # Sentinels first, so none starts a failover while the rest goes down.
    stop_pidfiles "$dir"/sentinel/sentinel*/pid
    stop_pidfiles "$dir/redis.pid" "$dir/memcached.pid" "$dir"/*/*/pid
    rm -f "$dir/redis.port" "$dir/memcached.port"
}

# status_line LABEL MATCH PIDFILE PORTFILE CHECKFN: print one status line;
# false if the server is down.
status_line() {
    local label=$1 match=$2 pid port extra=""
    pid=$(cat "$3" 2>/dev/null || echo -)
    port=$(cat "$4" 2>/dev/null || echo -)
    if pid_is "$pid" "$match" && "$5" "$port"; then
        if [[ $5 == redis_answers ]]; then
            extra=", $(rcli "$port" role | head -n 1)"
        fi
        echo "$label: up (pid $pid, port $port$extra)"
    else
        echo "$label: down (pid $pid, port $port)"
        return 1
    fi
}

cmd_status() {
    local dir=$1 rc=0 name pd pds=() port out
    [[ -d $dir ]] || die "no such directory: $dir"
    pds=("$dir"/*/*/kind)
    for name in redis memcached; do
        # The singles are reported when recorded, or when nothing else is.
        if [[ -f $dir/$name.pid || -f $dir/$name.port || ${#pds[@]} -eq 0 ]]; then
            status_line "$name" "$name" "$dir/$name.pid" "$dir/$name.port" "${name}_answers" || rc=1
        fi
    done
    for pd in "${pds[@]}"; do
        pd=${pd%/kind}
        status_line "${pd#"$dir"/} ($(<"$pd/kind"))" "$(pidfile_match "$pd/pid")" "$pd/pid" "$pd/port" \
            "$(kind_check "$(<"$pd/kind")")" || rc=1
    done
    for pd in "$dir"/cluster/node*; do
        port=$(<"$pd/port")
        if out=$(rcli "$port" cluster info | tr -d '\r' | grep -E '^cluster_(state|slots_ok):'); then
            echo "cluster: $(echo $out) (asked ${pd#"$dir"/})"
            break
        fi
    done
    for pd in "$dir"/sentinel/sentinel*; do
        port=$(<"$pd/port")
        if out=$(rcli "$port" sentinel get-master-addr-by-name "$SENTINEL_NAME") && [[ -n $out ]]; then
            echo "sentinel: $SENTINEL_NAME at $(echo $out | tr ' ' :) (asked ${pd#"$dir"/})"
            break
        fi
    done
    return "$rc"
}

main() {
    [[ $# -ge 1 ]] || usage
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    case $1 in
    install | install-browser)
        [[ $# -eq 1 ]] || usage
        "cmd_${1//-/_}"
        ;;
    start | stop | status | start-cluster | start-sentinel)
        [[ $# -eq 2 && -n $2 ]] || usage
        "cmd_${1//-/_}" "$2"
        ;;
    start-ring)
        [[ ($# -eq 2 || $# -eq 3) && -n $2 ]] || usage
        cmd_start_ring "${@:2}"
        ;;
    kill-node)
        [[ ($# -eq 3 || $# -eq 4) && -n $2 && -n $3 ]] || usage
        cmd_kill_node "${@:2}"
        ;;
    restart-node)
        [[ $# -eq 3 && -n $2 && -n $3 ]] || usage
        cmd_restart_node "$2" "$3"
        ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
