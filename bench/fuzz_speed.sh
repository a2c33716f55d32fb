#!/bin/sh
# Fuzzing speed: executions per second of each target, on one core.
#   bench/fuzz_speed.sh [SECONDS] [--gpu]
#     walk       the structure-aware random walk, uninstrumented (build/, any
#                compiler): what the GPU host runs; CPU models unless --gpu
#     libfuzzer  the libFuzzer binary with coverage, ASan and UBSan
#                (build-fuzz/, fuzz/build.sh): what CI and campaigns run
# With --gpu only the walk on the kernels is measured (layout, combine).
# Environment: AC_BUILD (default build), AC_FUZZ_BUILD (default build-fuzz).
# Prints a table; layout's goal is >= 1000 execs/s on small shapes with the
# CPU model (docs/FUZZING.md).
set -u
cd "$(dirname "$0")/.."
SECS=${1:-20}
GPU=0
[ "${2:-}" = "--gpu" ] && GPU=1
B=${AC_BUILD:-build}
FB=${AC_FUZZ_BUILD:-build-fuzz}
TOOL=$B/tools/attncheck
[ -x "$TOOL" ] || TOOL=$(ls "$B"/attncheck "$B"/*/attncheck 2>/dev/null | head -n 1)
tmp=$(mktemp -d)
rows=""
row() { rows="$rows$(printf '%-9s %-10s %-10s %10s %7s %10s' "$1" "$2" "$3" "$4" "$5" "$6")
"; }
targets="layout combine api casefile"
[ $GPU = 1 ] && targets="layout combine"
for t in $targets; do
  be=cpu
  [ $GPU = 1 ] && be=gpu
  if [ -n "$TOOL" ] && [ -x "$TOOL" ]; then
    "$TOOL" fuzz "$t" --walk --jobs 1 --backend $be --seconds "$SECS" --seed 1 --out "$tmp/walk-$t" >"$tmp/walk-$t.log" 2>&1
    ex=$(sed -n 's/^  executions *\([0-9]*\) (\([0-9]*\)\/s).*/\1 \2/p' "$tmp/walk-$t.log")
    row "$t" walk "$be" "${ex% *}" "$SECS" "${ex#* }"
  fi
  if [ $GPU = 0 ] && [ -x "$FB/fuzz/fuzz_$t" ]; then
    case $t in combine) seeds=corpus/combine-fuzz ;; *) seeds=corpus/$t ;; esac
    mkdir -p "$tmp/lf-$t"
    "$FB/fuzz/fuzz_$t" -max_total_time="$SECS" -max_len=65536 -print_final_stats=1 -seed=1 \
      "$tmp/lf-$t" "$seeds" >"$tmp/lf-$t.log" 2>&1
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/lf-$t.log")
    r=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/lf-$t.log")
    row "$t" libfuzzer "cpu+asan" "$n" "$SECS" "$r"
  fi
done
printf '%-9s %-10s %-10s %10s %7s %10s\n' target driver backend execs seconds execs/s
printf '%s' "$rows"
rm -rf "$tmp"
