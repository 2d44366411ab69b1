#!/bin/bash
# One sitting: the PyTorch DAC reference (../shared/tools/torch_dac_bench.py, set-up in its
# header) alternated with dia-bench codec. Usage: sitting.sh OUT_DIR (after
# `cargo build --release -p dia-bench`, from the repository root).
set -e
OUT=${1:?output directory}; mkdir -p $OUT
B=target/release/dia-bench
T=../shared/tools/torch_dac_bench.py
export RAYON_NUM_THREADS=2
for i in 1 2 3; do
  python $T --seconds 2 --threads 2 >> $OUT/torch.jsonl
  $B codec --seconds 2 --runs 1 --out $OUT/run$i > /dev/null
done
python $T --seconds 2 --threads 2 >> $OUT/torch.jsonl
python $T --seconds 10 --threads 2 >> $OUT/torch-long.jsonl
$B codec --seconds 10 --runs 1 --out $OUT/long > /dev/null
