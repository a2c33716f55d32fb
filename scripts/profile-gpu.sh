#!/usr/bin/env bash
# Nsight Compute on the benchmark rows issue 12's goals hinge on (docs/PERF.md
# quotes the figures): decode paged16 B=64 S=4096 and B=1 S=32768, prefill bf16
# D=128 causal B=2 H=32 S=8192. Run on the Hopper host with build-gpu carried:
#   OUT=$OUT scripts/profile-gpu.sh
# One kernel launch per row after the check run and warm-ups (--launch-skip),
# clocks left alone (--clock-control none, METHOD.md). The full reports go to
# $OUT/ncu-*.txt; the lines that decide the next step print last.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-build-gpu}
dest=${OUT:-$PWD/profile-results}
mkdir -p "$dest"
sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis
          --section Occupancy --section LaunchStats --section SchedulerStats --section WarpStateStats)
prof() { # name, kernel regex, command...
  local n=$1 k=$2
  shift 2
  timeout 150 ncu --clock-control none --kernel-name "regex:$k" --launch-skip 4 --launch-count 1 "${sections[@]}" \
    "$@" >"$dest/ncu-$n.txt" 2>&1
  echo "== $n (rc=$?)"
  grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|Memory Throughput|L2 Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|Issued Ipc Active|Achieved Occupancy|Theoretical Occupancy|Registers Per Thread|Block Limit Registers|Warp Cycles Per Issued Instruction|No Eligible|Grid Size|Waves Per SM" \
    "$dest/ncu-$n.txt" | head -n 30
  grep -E "^ +(OPT|INF) +.*(stall|Stall)" -A2 "$dest/ncu-$n.txt" | head -n 12
}
[ "${ONLY_PREFILL:-0}" = 1 ] || prof decode-b64 decode_kernel $B/bench/decode_bench --table --only "paged16 B=64 S=4096" --reps 5
[ "${ONLY_PREFILL:-0}" = 1 ] || prof decode-b1 decode_kernel $B/bench/decode_bench --table --only "paged16 B=1 S=32768" --reps 5
prof prefill-s8192 prefill_kernel $B/bench/prefill_bench --table --only "prefill bf16 D=128 B=2 H=32 S=8192" --reps 10
