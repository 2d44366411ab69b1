#!/usr/bin/env bash
# dia-model on aarch64 (Apple silicon, Graviton, Ampere) without an ARM machine: its tests
# cross-built for aarch64-unknown-linux-gnu and run under qemu-aarch64, which emulates the CPU
# (NEON, dotprod and i8mm included) but not its speed. What runs: dia-model's unit tests (the
# kernels against their references), the model tests on the tiny fixtures (layer outputs and
# greedy codes against the reference goldens, every weight storage, converted checkpoints) and
# the portable tests (custom kernels off). Arguments go to the test binaries (a filter,
# `--skip`, ...).
#
# Needs (installed here on Debian when missing): gcc-aarch64-linux-gnu, libc6-dev-arm64-cross,
# qemu-user, and rustup's aarch64-unknown-linux-gnu target.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu

if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# Its own target dir: the host build's stays untouched (and unlocked) beside it.
export CARGO_TARGET_DIR="${DIA_AARCH64_TARGET_DIR:-$HOME/.cache/dia-burn/target-aarch64}"

cargo test -p dia-model --target "$target" --lib --test model --test portable -- "$@"
