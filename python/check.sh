#!/usr/bin/env bash
# The Python package's checks: builds the `dia_burn` module into a virtual environment (the dev
# profile, so it reuses what the workspace's test build compiled in the shared target dir: the
# dependencies are at opt-level 3 there), builds `dia-infer` (the tests compare with it), and
# runs the pytest suite on the fixtures. Exits non-zero on any failure.
#
#   python/check.sh [PYTEST ARGS...]
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/dia-burn/target), DIA_PY_VENV (default
# ~/.cache/dia-burn/py-venv), PYTHON (the interpreter that makes the venv, default python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dia-burn/target}"
venv="${DIA_PY_VENV:-$HOME/.cache/dia-burn/py-venv}"

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9,<2" "numpy>=1.21" pytest

# The module, installed into the venv (editable: the Python sources stay in python/py_src).
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    maturin develop --manifest-path "$root/python/Cargo.toml" --quiet

# The CLI the tests compare the module with (a no-op when it is up to date).
cargo build --quiet -p dia-infer --manifest-path "$root/Cargo.toml"
export DIA_INFER="$CARGO_TARGET_DIR/debug/dia-infer"

# Offline: the tests load the fixtures and a hub cache they make themselves.
cd "$root"
HF_HUB_OFFLINE=1 "$venv/bin/python" -m pytest python/tests -q "$@"
