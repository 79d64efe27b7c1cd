#!/usr/bin/env bash
# Instructions per request of the library's session work (benches/request_cost.rs
# under callgrind): deterministic, so a change of a few percent shows, on a
# machine whose timings swing. Prints one line per kind.
#
#   benches/request_cost.sh                 # every kind
#   KINDS="memory_w2 untouched" benches/request_cost.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || { echo "request_cost.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
KINDS=${KINDS:-untouched memory_w1 memory_w2 fernet_w1 fernet_w2}
LOW=${LOW:-200}
HIGH=${HIGH:-2200}
cargo bench --bench request_cost --features fernet --no-run 2>/dev/null
target=${CARGO_TARGET_DIR:-target}
bin=$(ls -t "$target"/release/deps/request_cost-* | grep -v '\.d$' | head -n1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # KIND N -> total instructions
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>"$out/log"
    awk '/^summary:|^totals:/ { print $2; exit }' "$out/cg"
}
printf '%-10s %12s\n' kind "instr/request"
for kind in $KINDS; do
    a=$(count "$kind" "$LOW")
    b=$(count "$kind" "$HIGH")
    printf '%-10s %12d\n' "$kind" $(((b - a) / (HIGH - LOW)))
done
