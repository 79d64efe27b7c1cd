#!/usr/bin/env bash
# Runs every test of the crate on this machine, installing what is missing:
# the Python venv with the real aiohttp-session for the interop tests
# (scripts/pyenv.sh, exported as HTTP_SESSION_PYTHON), redis-server and
# memcached (Debian packages), started on free loopback ports for the
# duration of the run and stopped afterwards, and Debian's chromium and
# chromium-driver for the browser test (tests/browser.rs, which starts its
# own chromedriver; screenshots in <target dir>/browser/).
#
#   scripts/test.sh              # all tests, all features, doctests included
#   scripts/test.sh -- NAME      # extra arguments go to `cargo test`
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
export HTTP_SESSION_REDIS_URL HTTP_SESSION_MEMCACHED
echo "test.sh: redis at $HTTP_SESSION_REDIS_URL, memcached at $HTTP_SESSION_MEMCACHED" >&2

# The example servers and the demo are spawned as processes by
# tests/interop, tests/shared_sessions.rs and tests/browser.rs: build them
# first, so a run of one test target never drives stale binaries.
cargo build --all-features --examples
cargo test --all-features "${extra[@]}"
