#!/usr/bin/env bash
# The GPU check (issues 20 and 21): dia-bench on cuda and wgpu beside transformers' Dia on the
# same GPU, in one sitting. Two halves:
#
#   scripts/gpu-check.sh prepare [NAME]   (here) builds dia-bench with cuda and wgpu, strips it and
#                                         gzips it to gpu/dia-bench-NAME.gz (NAME: e.g. before, after)
#   scripts/gpu-check.sh run              (on the GPU machine, with gpu/ carried) writes under $OUT
#
# `run` measures every gpu/dia-bench-*.gz it finds (so a change is measured beside the code it
# replaces), each at the full size with random weights, bf16/f16/f32 (DTYPES=bf16,bf16:int8 adds
# int8 weights: each row costs its share of BENCH_LIMIT), on cuda and wgpu, with and
# without the CubeCL kernels and each decode hook alone (`dia-bench kernels`), sampling
# on the host and on the device where the binary can (SAMPLING=host,device), then the
# PyTorch anchors (eager bf16/f16/f32, compiled bf16), with CubeCL's autotune and kernel caches
# kept between the configurations (cubecl.toml in the working folder). Every part has its own
# time limit, so one that hangs costs its limit and the rest still report.
#
# A dry run on a machine without a GPU (the tiny model, wgpu, the anchor on the CPU):
#   OUT=/tmp/dry SIZE=tiny BACKENDS=wgpu TORCH_DEVICE=cpu TORCH_CONFIG=tiny PYTHON=/tmp/refenv/bin/python \
#       scripts/gpu-check.sh run
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local name="${1:-current}"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dia-burn/target}"
    # The H200 machine's driver is CUDA 13.0.
    CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}" \
        cargo build --release -p dia-bench --features wgpu,cuda
    mkdir -p gpu
    strip -o "gpu/dia-bench-$name" "$CARGO_TARGET_DIR/release/dia-bench"
    gzip -9f "gpu/dia-bench-$name"
    git rev-parse HEAD > "gpu/dia-bench-$name.commit"
    ls -l gpu/
}

run() {
    local out="${OUT:?run sets OUT to the folder that comes back}"
    local work=/tmp/gpu-check
    mkdir -p "$work"
    # Autotune results and compiled kernels in the working folder, shared by every process.
    printf '[compilation]\ncache = "local"\n\n[autotune]\ncache = "local"\n' > "$work/cubecl.toml"
    { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
        --format=csv 2>&1 || true; nproc; } > "$out/machine.txt"

    local steps="${STEPS:-150}" warmup="${WARMUP:-30}"
    for packed in gpu/dia-bench-*.gz; do
        local name
        name="$(basename "$packed" .gz)"
        gunzip -c "$packed" > "$work/$name"
        chmod +x "$work/$name"
        # Both sampling sites and both kernel sets where the binary has them (host: a read-back
        # every step; custom kernels off: Burn's generic ops, the path issue 21 replaces).
        local knobs=()
        local help
        help="$("$work/$name" report --help)"
        if grep -q -- --sampling <<< "$help"; then
            knobs+=(--sampling "${SAMPLING:-host,device}")
        fi
        if grep -q -- --custom-kernels <<< "$help"; then
            knobs+=(--custom-kernels "${CUSTOM_KERNELS:-both}")
        fi
        (cd "$work" && timeout "${BENCH_LIMIT:-240}" "./$name" report --size "${SIZE:-full}" \
            --backends "${BACKENDS:-cuda,wgpu}" --dtypes "${DTYPES:-bf16,f16,f32}" --rope-table on --fused-qkv on \
            "${knobs[@]}" --steps "$steps" --warmup "$warmup" --dac-seconds 0 --out "$out/$name") \
            > "$out/$name.log" 2>&1 || echo "exit $?" >> "$out/$name.log"
        # Each decode hook alone, ours against Burn's ops, where the binary has the command.
        if "$work/$name" --help | grep -q kernels; then
            local backends="${BACKENDS:-cuda,wgpu}"
            for backend in ${backends//,/ }; do
                (cd "$work" && timeout "${KERNELS_LIMIT:-60}" "./$name" kernels --backend "$backend" \
                    --dtype bf16 --out "$out/$name-kernels-$backend") \
                    >> "$out/$name.log" 2>&1 || echo "kernels $backend: exit $?" >> "$out/$name.log"
            done
        fi
    done

    local python="${PYTHON:-python3}"
    local anchor=(scripts/torch_gpu_anchor.py --device "${TORCH_DEVICE:-cuda}"
        --config "${TORCH_CONFIG:-full}" --steps "$steps" --warmup "$warmup")
    for dtype in bfloat16 float16 float32; do
        timeout "${TORCH_LIMIT:-90}" "$python" "${anchor[@]}" --dtype "$dtype" \
            >> "$out/torch.jsonl" 2>> "$out/torch.log" \
            || echo "eager $dtype: exit $?" >> "$out/torch.log"
    done
    timeout "${COMPILE_LIMIT:-240}" "$python" "${anchor[@]}" --dtype bfloat16 --compile \
        >> "$out/torch.jsonl" 2>> "$out/torch.log" \
        || echo "compiled bfloat16: exit $?" >> "$out/torch.log"
    cat "$out/torch.jsonl"
    tail -n 30 "$out"/dia-bench-*/report.md 2>/dev/null || true
}

case "${1:-}" in
    prepare) shift; prepare "$@" ;;
    run) run ;;
    *) echo "usage: $0 prepare [NAME] | run" >&2; exit 2 ;;
esac
