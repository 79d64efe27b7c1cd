#!/usr/bin/env bash
# get + cas round trips of http-session's own memcached client and of the
# `memcache` crate's async meta client, against one private memcached on
# loopback (started here through scripts/services.sh, stopped on exit).
#
#   benches/memcached-client/run.sh [SECONDS_PER_RUN] [ROUNDS]   (default 3 3)
#
# Builds in release mode (CARGO_TARGET_DIR is honoured). Results: RESULTS.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/http-session-mcbench.XXXXXX")
cleanup() {
    "$root/scripts/services.sh" stop "$dir" || true
    rm -rf "$dir"
}
trap cleanup EXIT
"$root/scripts/services.sh" start-ring "$dir" 1
# shellcheck disable=SC1091
. "$dir/ring.env"
cargo build --release --manifest-path "$here/Cargo.toml"
target=${CARGO_TARGET_DIR:-$here/target}
echo "memcached $(memcached -V | cut -d' ' -f2) at $HTTP_SESSION_MEMCACHED_RING; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 "$target/release/http-session-memcached-client-bench" "$HTTP_SESSION_MEMCACHED_RING" "${1:-3}" "${2:-3}"
