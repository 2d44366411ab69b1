#!/bin/bash
# One sitting: load times before (HEAD 407ef7f) and after, original and converted checkpoints.
NEW=$HOME/.cache/dia-burn/target/release
BASE=/tmp/base-target/release/dia-bench
cd /tmp/loads
rm -rf /tmp/full-w8a8 /tmp/full-bf16
{
date -u; grep -m1 "model name" /proc/cpuinfo; free -g | head -2
$NEW/dia-bench bandwidth
for w in w8a8 bf16; do /usr/bin/time -f "convert $w: %e s, peak %M KB" $NEW/dia-infer convert --model-dir /tmp/full-tf --weights $w -o /tmp/full-$w; done
/usr/bin/time -f "convert f32 again: %e s, peak %M KB" $NEW/dia-infer convert --model-dir /tmp/full-tf --weights f32 -o /tmp/full-f32-again && rm -rf /tmp/full-f32-again
ls -l /tmp/full-*/model.safetensors
for round in 1 2; do
  echo "== round $round"
  echo "-- before, transformers f32"; $BASE load --model-dir /tmp/full-tf --runs 2
  echo "-- after, transformers f32"; $NEW/dia-bench load --model-dir /tmp/full-tf --runs 2
  echo "-- before, transformers int8"; $BASE load --model-dir /tmp/full-tf --weights int8 --runs 2
  echo "-- after, transformers int8"; $NEW/dia-bench load --model-dir /tmp/full-tf --weights int8 --runs 2
  echo "-- after, transformers w8a8"; $NEW/dia-bench load --model-dir /tmp/full-tf --weights w8a8 --runs 2
  for w in f32 bf16 int8 w8a8; do echo "-- converted $w"; $NEW/dia-bench load --model-dir /tmp/full-$w --runs 3; done
done
$NEW/dia-bench bandwidth
date -u
} > /tmp/loads/log.txt 2>&1
