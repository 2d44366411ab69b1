#!/usr/bin/env bash
# Our GPU kernels compiled for the GPUs this machine lacks (no GPU, no driver needed):
#
# 1. CUDA: every kernel of ours a decode step, a prefill and the device sampler can launch
#    (f32/f16/bf16 activations, f32/f16/bf16/int8 weights, 1-8 rows, masks, key splits, greedy
#    and sampled, the vector widths the launch code picks on CUDA) generated as CUDA C++ by
#    CubeCL and compiled by NVRTC to PTX and CUBIN for sm_80, sm_89 and sm_90a
#    (`gpu_check cuda`, `scripts/nvrtc_check.py`). NVRTC and the headers are NVIDIA's PyPI
#    wheels, installed into a venv kept in ~/.cache/dia-burn. Burn's own CUDA kernels pick their
#    variants from a real device, so they are not covered.
# 2. Metal and DX12: every WGSL module dia-model's and dia-dac's wgpu tests compile on lavapipe
#    (a decode step, prefill, device sampling, batching, f16, int8, the codec; ours and Burn's,
#    fused ones included), captured from CubeCL's compile log and translated by naga to MSL and
#    HLSL after validation against each writer's capabilities (`gpu_check wgsl`). Those test
#    runs are CI's wgpu tests: they must pass too. Needs a Vulkan driver (lavapipe:
#    `apt-get install mesa-vulkan-drivers`).
#
# Usage: scripts/gpu-compile-check.sh [OUT_DIR]   (default: $CARGO_TARGET_DIR/gpu-compile-check)
# The last line reads
#   N kernels -> PTX+CUBIN (sm_80, sm_89, sm_90a): F failed; M shaders -> MSL, HLSL: G failed
# and the exit code is non-zero if anything failed. Reports: OUT_DIR/cuda/nvrtc.json and
# OUT_DIR/wgsl/naga.json. About 3 minutes warm on the 2-core EPYC, most of it the wgpu tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dia-burn/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
out="$(realpath -m "${1:-$CARGO_TARGET_DIR/gpu-compile-check}")"
rm -rf "$out"
mkdir -p "$out/cuda" "$out/wgsl"
packages=(-p dia-model -p dia-dac --features dia-model/wgpu,dia-dac/wgpu,dia-model/gpu-check)

venv="$HOME/.cache/dia-burn/cuda-wheels"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check "nvidia-cuda-nvrtc-cu12==12.9.*" \
    "nvidia-cuda-runtime-cu12==12.9.*" "nvidia-cuda-nvcc-cu12==12.9.*" "nvidia-cuda-cccl-cu12==12.9.*"

cargo build "${packages[@]}" --example gpu_check
check="$CARGO_TARGET_DIR/debug/examples/gpu_check"
"$check" cuda "$out/cuda"
status=0
"$venv/bin/python" scripts/nvrtc_check.py "$out/cuda" | tee "$out/cuda/nvrtc.txt" || status=1
cuda_line="$(tail -n 1 "$out/cuda/nvrtc.txt")"

# The wgpu test binaries, run from a folder whose cubecl.toml turns CubeCL's compile log on.
mapfile -t binaries < <(cargo test "${packages[@]}" --test wgpu --test dac --no-run \
    --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("wgpu", "dac"):
        print(m["target"]["name"], m["executable"])
')
if [ "${#binaries[@]}" -ne 2 ]; then
    echo "gpu-compile-check: expected the wgpu and dac test binaries, found: ${binaries[*]:-none}" >&2
    exit 1
fi
cat >"$out/wgsl/cubecl.toml" <<TOML
[compilation.logger]
level = "full"
file = "$out/wgsl/compiled.log"
TOML
for entry in "${binaries[@]}"; do
    read -r name binary <<<"$entry"
    filter=()
    if [ "$name" = dac ]; then filter=(wgpu::); fi
    # CARGO_MANIFEST_DIR, as `cargo test` sets it, tells the tests where the fixtures are.
    (cd "$out/wgsl" && CARGO_MANIFEST_DIR="$repo" "$binary" "${filter[@]}")
done
"$check" wgsl "$out/wgsl/naga.json" "$out/wgsl/compiled.log" 2>"$out/wgsl/failures.txt" \
    | tee "$out/wgsl/naga.txt" || status=1
if [ -s "$out/wgsl/failures.txt" ]; then head -c 20000 "$out/wgsl/failures.txt"; fi
echo "$cuda_line; $(tail -n 1 "$out/wgsl/naga.txt")"
exit "$status"
