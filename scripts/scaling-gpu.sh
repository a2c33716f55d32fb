#!/usr/bin/env bash
# The scaling measurements of docs/SCALING.md on a multi-GPU host:
# `ctest -L gpu` wall time on 1 and on every GPU (scripts/ctest-gpus.sh), then
# the layout walk for SECONDS on all GPUs and on one, same seed and worker
# count, with traces compared input by input (scripts/trace_compare.py).
#   scripts/scaling-gpu.sh [SECONDS] [GPU counts, largest first...]
# Needs build-gpu (scripts/gpu-round.sh build). Results in $OUT/scaling.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
shift || true
n=$(nvidia-smi -L | grep -c '^GPU')
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=($n 1)
dest=${OUT:-$PWD/scaling-results}
mkdir -p "$dest"
sum="$dest/scaling.txt"
src=$(sed -n 's/^# Source directory: //p' build-gpu/CTestTestfile.cmake)
if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"; fi
nvidia-smi --query-gpu=index,name --format=csv,noheader | tee "$sum"
echo "cores $(nproc)" | tee -a "$sum"
for g in $n 1; do
  t0=$(date +%s.%N)
  bash scripts/ctest-gpus.sh build-gpu "$g" >"$dest/ctest-gpus-$g.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  printf 'ctest -L gpu on %d GPU(s): rc=%d, %.1f s wall, %s\n' "$g" "$rc" "$(awk "BEGIN {print $t1 - $t0}")" \
    "$(grep -E 'tests passed|tests failed' "$dest/ctest-gpus-$g.log")" | tee -a "$sum"
done
for g in "${counts[@]}"; do
  mkdir -p "/tmp/trace-$g"
  bash scripts/gpu-campaign.sh --seconds "$secs" --gpus "$g" --jobs "$(nproc)" --seed 20261129 --bin build-gpu \
    --out "/tmp/campaign-$g" --trace "/tmp/trace-$g/t" >"$dest/campaign-$g.log" 2>&1 || true
  echo "== layout walk, $g GPU(s), ${secs} s:" | tee -a "$sum"
  grep -E "duration|executions|per GPU|findings" "$dest/campaign-$g.log" | tee -a "$sum"
done
if [ ${#counts[@]} -ge 2 ]; then
  echo "inputs, ${counts[0]} GPUs vs ${counts[-1]}: $(python3 scripts/trace_compare.py /tmp/trace-${counts[0]}/t /tmp/trace-${counts[-1]}/t | tail -1)" | tee -a "$sum"
fi
tar czf "$dest/scaling-logs.tgz" -C "$dest" --exclude scaling-logs.tgz . 2>/dev/null || true
