#!/usr/bin/env bash
# Runs every test of the crate on this machine, installing what is missing:
# the Python venv with the real aiohttp-session for the interop tests
# (scripts/pyenv.sh, exported as HTTP_SESSION_PYTHON), redis-server,
# redis-sentinel and memcached (Debian packages): a Redis, a Redis Cluster,
# a Sentinel set, a memcached and a ring of three memcached, started on free
# loopback ports for the duration of the run (scripts/services.sh start)
# and stopped afterwards; and Debian's chromium and chromium-driver for the
# browser test (tests/browser.rs, which starts its own chromedriver;
# screenshots in <target dir>/browser/).
#
#   scripts/test.sh              # all tests, all features, doctests included
#   scripts/test.sh -- NAME      # extra arguments go to `cargo test`
#
# After `cargo test` it runs tests/fork-check (fork safety of the random
# generator; its own crate, see its Cargo.toml).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

extra=()
if [[ ${1:-} == "--" ]]; then
    shift
    extra=("$@")
fi

command -v cargo >/dev/null || { echo "test.sh: cargo not found (install Rust first)" >&2; exit 1; }

# The interop tests run the real aiohttp-session (tests/interop/app.py) from
# a venv with pinned versions; creating it needs python3 and PyPI the first
# time. A failure here fails the run: the interop tests are never skipped.
HTTP_SESSION_PYTHON=$(scripts/pyenv.sh | tail -n1) || {
    echo "test.sh: error: could not create the Python venv for the interop tests (scripts/pyenv.sh failed, see above)" >&2
    exit 1
}
[[ -x $HTTP_SESSION_PYTHON ]] || {
    echo "test.sh: error: scripts/pyenv.sh gave no usable python: ${HTTP_SESSION_PYTHON:-<nothing>}" >&2
    exit 1
}
export HTTP_SESSION_PYTHON
echo "test.sh: interop python at $HTTP_SESSION_PYTHON" >&2

scripts/services.sh install
scripts/services.sh install-browser

services_dir=$(mktemp -d "${TMPDIR:-/tmp}/http-session-services.XXXXXX")
cleanup() {
    scripts/services.sh stop "$services_dir" || true
    rm -rf "$services_dir"
}
trap cleanup EXIT
scripts/services.sh start "$services_dir"
# shellcheck disable=SC1091
. "$services_dir/env"
for var in HTTP_SESSION_REDIS_URL HTTP_SESSION_MEMCACHED HTTP_SESSION_REDIS_CLUSTER \
    HTTP_SESSION_REDIS_SENTINEL HTTP_SESSION_MEMCACHED_RING; do
    [[ -n ${!var:-} ]] || { echo "test.sh: error: services.sh start did not set $var" >&2; exit 1; }
    export "${var?}"
done
echo "test.sh: redis at $HTTP_SESSION_REDIS_URL, memcached at $HTTP_SESSION_MEMCACHED" >&2
echo "test.sh: redis cluster at $HTTP_SESSION_REDIS_CLUSTER" >&2
echo "test.sh: redis sentinel at $HTTP_SESSION_REDIS_SENTINEL" >&2
echo "test.sh: memcached ring at $HTTP_SESSION_MEMCACHED_RING" >&2

# The example servers and the demo are spawned as processes by
# tests/interop, tests/shared_sessions.rs and tests/browser.rs: build them
# first, so a run of one test target never drives stale binaries.
cargo build --all-features --examples
cargo test --all-features "${extra[@]}"

# Fork safety of session ids, IVs and nonces, and the error path of a failing
# OS random source, checked in real fork children: a crate of its own, since
# the main package forbids unsafe code and fork(2) needs it. Not --locked:
# its Cargo.lock follows http-session's dependencies, which cargo adds to it
# when they change.
cargo run --manifest-path tests/fork-check/Cargo.toml \
    --target-dir "${CARGO_TARGET_DIR:-$root/target}"
