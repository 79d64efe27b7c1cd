#!/usr/bin/env bash
# Create (once) the Python venv with the real aiohttp-session used by the
# interop tests, and print its python's path as the last line of stdout.
#
#   scripts/pyenv.sh                  -> /abs/path/target/interop-venv/bin/python
#   PY=$(scripts/pyenv.sh | tail -n1)
#
# Environment:
#   HTTP_SESSION_VENV  venv directory (default: <repo>/target/interop-venv;
#                      a relative value is taken from the current directory)
#   PYTHON             interpreter that creates the venv (default: python3)
#
# pip runs only when tests/interop/requirements.txt (or the interpreter)
# changed since the last successful install; otherwise this takes ~0.1 s.
# All progress output goes to stderr, so stdout carries only the path.
set -euo pipefail

die() {
    echo "pyenv.sh: error: $*" >&2
    exit 1
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req=$root/tests/interop/requirements.txt
venv=${HTTP_SESSION_VENV:-$root/target/interop-venv}
base_python=${PYTHON:-python3}

[[ -f $req ]] || die "missing $req"
command -v "$base_python" >/dev/null || die "$base_python not found (set PYTHON=...)"
mkdir -p "$(dirname "$venv")"
venv=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")
py=$venv/bin/python
stamp=$venv/.requirements.stamp

# Serialise concurrent callers (e.g. parallel tests) on a lock beside the venv.
if command -v flock >/dev/null; then
    exec 9>"$venv.lock"
    flock 9
fi

# The stamp covers the requirements and the interpreter that built the venv.
base_version=$("$base_python" -c 'import sys; print(sys.version.replace("\n", " "))')
want=$({
    cat "$req"
    echo "$base_version"
} | sha256sum | cut -d' ' -f1)

if [[ -x $py && -f $stamp && $(<"$stamp") == "$want" ]] && "$py" -c 'import sys' 2>/dev/null; then
    echo "$py"
    exit 0
fi

echo "pyenv.sh: installing interop requirements into $venv" >&2
rm -f "$stamp"
# --clear rebuilds a venv left half-made or made by another interpreter.
"$base_python" -m venv --clear "$venv" >&2 ||
    die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
"$py" -m pip install --disable-pip-version-check --no-input -q -r "$req" >&2 ||
    die "pip install -r $req failed (is PyPI reachable?)"
"$py" -c 'import aiohttp, aiohttp_session, aiomcache, cryptography, nacl, pylibmc, redis, uhashring' >&2 ||
    die "installed packages do not import"
echo "$want" >"$stamp"
echo "$py"
