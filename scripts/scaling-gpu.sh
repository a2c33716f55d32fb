#!/usr/bin/env bash
# The scaling measurements of docs/SCALING.md on a multi-GPU host:
# `ctest -L gpu` wall time on 1 and on every GPU (scripts/ctest-gpus.sh), then
# the layout walk for SECONDS on all GPUs and on one, same seed and worker
# count, with traces compared input by input (scripts/trace_compare.py).
#   scripts/scaling-gpu.sh [SECONDS] [GPU counts, largest first...]
# Needs build-gpu (scripts/gpu-round.sh build). Results in $OUT/scaling.txt.
# One device call runs 10 minutes at most, so two 5-minute walks take two calls:
#   SCALING_CTEST=0   skip the ctest timings (they ran in an earlier call)
#   SCALING_TRACES=D  keep the walk traces in D (default /tmp); a later call on the
#                     same warm machine compares its trace with the one left there
#                     (an ignored folder of the repository survives between calls)
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
traces=${SCALING_TRACES:-/tmp}
[ "${SCALING_CTEST:-1}" = 0 ] || for g in $n 1; do
  t0=$(date +%s.%N)
  bash scripts/ctest-gpus.sh build-gpu "$g" >"$dest/ctest-gpus-$g.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  printf 'ctest -L gpu on %d GPU(s): rc=%d, %.1f s wall, %s\n' "$g" "$rc" "$(awk "BEGIN {print $t1 - $t0}")" \
    "$(grep -E 'tests passed|tests failed' "$dest/ctest-gpus-$g.log")" | tee -a "$sum"
done
for g in "${counts[@]}"; do
  rm -rf "$traces/trace-$g" && mkdir -p "$traces/trace-$g"
  bash scripts/gpu-campaign.sh --seconds "$secs" --gpus "$g" --jobs "$(nproc)" --seed 20261129 --bin build-gpu \
    --out "/tmp/campaign-$g" --trace "$traces/trace-$g/t" >"$dest/campaign-$g.log" 2>&1 || true
  echo "== layout walk, $g GPU(s), ${secs} s:" | tee -a "$sum"
  grep -E "duration|executions|per GPU|findings" "$dest/campaign-$g.log" | tee -a "$sum"
done
# Every pair of traces present (this call's and any an earlier call left in $traces).
have=()
for d in "$traces"/trace-*; do [ -e "$d/t.w0" ] && have+=("${d##*/trace-}"); done
for ((i = 0; i + 1 < ${#have[@]}; i++)); do
  a=${have[$i]} b=${have[$((i + 1))]}
  echo "inputs, $a GPU(s) vs $b: $(python3 scripts/trace_compare.py "$traces/trace-$a/t" "$traces/trace-$b/t" | tail -1)" | tee -a "$sum"
done
tar czf "$dest/scaling-logs.tgz" -C "$dest" --exclude scaling-logs.tgz . 2>/dev/null || true
