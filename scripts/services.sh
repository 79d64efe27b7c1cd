#!/usr/bin/env bash
# Run throwaway Redis and memcached servers on loopback for the test suite.
#
#   scripts/services.sh install        install redis-server + memcached (apt) if missing
#   scripts/services.sh start DIR      start both on free 127.0.0.1 ports; write DIR/env
#   scripts/services.sh stop DIR       stop exactly the pids recorded in DIR
#   scripts/services.sh status DIR     print pids/ports and whether each answers
#
# After `start`, `source DIR/env` exports:
#   HTTP_SESSION_REDIS_URL=redis://127.0.0.1:PORT/
#   HTTP_SESSION_MEMCACHED=127.0.0.1:PORT
#
# Servers listen on 127.0.0.1 only, keep nothing on disk, and log to DIR.
set -euo pipefail

readonly START_TIMEOUT_S=10 # how long each server gets to answer
readonly PORT_TRIES=5       # fresh ports tried per server if one is taken

die() {
    echo "services.sh: error: $*" >&2
    exit 1
}
log() { echo "services.sh: $*" >&2; }

usage() {
    sed -n '2,12p' "$0" >&2
    exit 2
}

# --- install ----------------------------------------------------------------

cmd_install() {
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null &&
        command -v memcached >/dev/null; then
        return 0
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and sudo is missing; install redis-server and memcached by hand"
        sudo=(sudo)
    fi
    log "installing redis-server and memcached with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server redis-tools memcached >/dev/null ||
        die "apt-get install redis-server memcached failed"
    command -v redis-server >/dev/null || die "redis-server still missing after install"
    command -v memcached >/dev/null || die "memcached still missing after install"
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

# True if PID is a live (non-zombie) process whose command line mentions NAME.
pid_is() {
    local pid=$1 name=$2 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

redis_answers() {
    [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
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

# wait_up NAME PID PORT CHECKFN: 0 once CHECKFN PORT succeeds, 1 if PID died
# (worth retrying on another port), 2 if the timeout passed.
wait_up() {
    local name=$1 pid=$2 port=$3 check=$4 i
    for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
        if "$check" "$port"; then
            return 0
        fi
        if ! pid_is "$pid" "$name"; then
            log "$name (pid $pid) exited before answering on port $port"
            return 1
        fi
        sleep 0.1
    done
    log "$name (pid $pid) did not answer on port $port within ${START_TIMEOUT_S}s"
    return 2
}

# stop_pid NAME PIDFILE: kill the recorded pid (only if it still is NAME) and
# wait for it to go; SIGKILL after ~10 s.
stop_pid() {
    local name=$1 file=$2 pid i
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    if pid_is "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            pid_is "$pid" "$name" || break
            sleep 0.1
        done
        if pid_is "$pid" "$name"; then
            log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                pid_is "$pid" "$name" || break
                sleep 0.1
            done
            ! pid_is "$pid" "$name" || die "$name (pid $pid) would not die"
        fi
    fi
    rm -f "$file"
}

# start_one NAME DIR CHECKFN LAUNCHFN: start a server on a free port, retrying
# with a new port if it exits early (e.g. the port was taken meanwhile); a
# server that stays up but never answers fails at once.
# Prints the port; records the pid in DIR/NAME.pid.
start_one() {
    local name=$1 dir=$2 check=$3 launch=$4 port pid try rc
    for ((try = 1; try <= PORT_TRIES; try++)); do
        port=$(free_port)
        pid=$("$launch" "$dir" "$port")
        echo "$pid" >"$dir/$name.pid"
        rc=0
        wait_up "$name" "$pid" "$port" "$check" || rc=$?
        if [[ $rc -eq 0 ]]; then
            echo "$port" >"$dir/$name.port"
            echo "$port"
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

# Launchers print the pid of the server they started in the background.
# stdin/stdout/stderr are detached so callers using $(...) do not hang.
launch_redis() {
    local dir=$1 port=$2
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize no --protected-mode yes --dir "$dir" \
        </dev/null >>"$dir/redis.log" 2>&1 &
    echo $!
}

launch_memcached() {
    local dir=$1 port=$2 user=()
    # memcached refuses to run as root unless told which user to be.
    [[ $(id -u) -ne 0 ]] || user=(-u root)
    memcached -l 127.0.0.1 -p "$port" -U 0 -m 64 "${user[@]}" \
        </dev/null >>"$dir/memcached.log" 2>&1 &
    echo $!
}

# --- start / stop / status --------------------------------------------------

cmd_start() {
    local dir=$1 rport mport
    command -v redis-server >/dev/null || die "redis-server not found; run: $0 install"
    command -v redis-cli >/dev/null || die "redis-cli not found; run: $0 install"
    command -v memcached >/dev/null || die "memcached not found; run: $0 install"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    for name in redis memcached; do
        if [[ -f $dir/$name.pid ]] && pid_is "$(<"$dir/$name.pid")" "$name"; then
            die "$name already running from $dir (pid $(<"$dir/$name.pid")); run: $0 stop $dir"
        fi
        rm -f "$dir/$name.pid" "$dir/$name.port"
    done
    rm -f "$dir/env"

    rport=$(start_one redis "$dir" redis_answers launch_redis)
    if ! mport=$(start_one memcached "$dir" memcached_answers launch_memcached); then
        stop_pid redis "$dir/redis.pid"
        rm -f "$dir/redis.port"
        exit 1
    fi

    cat >"$dir/env" <<EOF
export HTTP_SESSION_REDIS_URL=redis://127.0.0.1:$rport/
export HTTP_SESSION_MEMCACHED=127.0.0.1:$mport
EOF
    log "redis on 127.0.0.1:$rport (pid $(<"$dir/redis.pid")), memcached on 127.0.0.1:$mport (pid $(<"$dir/memcached.pid")); env in $dir/env"
}

cmd_stop() {
    local dir=$1
    [[ -d $dir ]] || return 0
    stop_pid redis "$dir/redis.pid"
    stop_pid memcached "$dir/memcached.pid"
    rm -f "$dir/redis.port" "$dir/memcached.port"
}

cmd_status() {
    local dir=$1 rc=0 name pid port check
    for name in redis memcached; do
        pid=$(cat "$dir/$name.pid" 2>/dev/null || echo -)
        port=$(cat "$dir/$name.port" 2>/dev/null || echo -)
        check=${name}_answers
        if pid_is "$pid" "$name" && "$check" "$port"; then
            echo "$name: up (pid $pid, port $port)"
        else
            echo "$name: down (pid $pid, port $port)"
            rc=1
        fi
    done
    return "$rc"
}

main() {
    [[ $# -ge 1 ]] || usage
    case $1 in
    install) cmd_install ;;
    start | stop | status)
        [[ $# -eq 2 && -n $2 ]] || usage
        "cmd_$1" "$2"
        ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
