#!/usr/bin/env bash
# Installs the cargo tools CI uses, when missing: cargo-deny.
set -euo pipefail
if ! cargo deny --version >/dev/null 2>&1; then
    echo "install-tools.sh: installing cargo-deny (takes several minutes)" >&2
    cargo install cargo-deny --locked --version 0.20.2
fi
cargo deny --version
