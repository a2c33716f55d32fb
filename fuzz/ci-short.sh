#!/bin/sh
# CI fragment: builds the libFuzzer targets with ASan + UBSan (fuzz/build.sh)
# and fuzzes each CPU target for a bounded time, starting from its seed
# corpus (so every seed is replayed under the sanitizers first). A crash, a
# sanitizer report or a finding (the targets trap on one) fails the script;
# the reproducer is copied to $AC_CI_ARTIFACTS (default build-fuzz/ci-artifacts)
# and `attncheck replay FILE` explains it.
#   fuzz/ci-short.sh [SECONDS_PER_TARGET]      (default 45 per target of fuzz/ac_fuzz_targets.def, one after the other)
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-45}
BUILD=${AC_FUZZ_BUILD:-build-fuzz}
ART=${AC_CI_ARTIFACTS:-$BUILD/ci-artifacts}
fuzz/build.sh "$BUILD"
mkdir -p "$ART"
failed=""
# The mutators themselves, under the sanitizers, on every field's extremes.
echo "== mutators on the extremes of every field (ASan/UBSan)"
if ! "$BUILD/fuzz/mutator_extremes" 1000 >"$ART/mutator-extremes.log" 2>&1; then
  tail -n 20 "$ART/mutator-extremes.log" | sed 's/^/   | /'
  failed="$failed mutators"
else
  sed 's/^/   /' "$ART/mutator-extremes.log"
fi
# A for loop, not a pipe into while: `failed` must survive the loop.
for t in $(fuzz/targets.sh | cut -d" " -f1); do
  seeds=corpus/$(fuzz/targets.sh | awk -v t="$t" '$1 == t {print $2}')
  work=$(mktemp -d)
  mkdir -p "$work/corpus"
  dict=""
  [ -f "fuzz/dicts/$t.dict" ] && dict="-dict=fuzz/dicts/$t.dict"
  echo "== fuzz $t for $SECS s (seeds $seeds)"
  if "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECS" -max_len=65536 $dict -print_final_stats=1 \
       -artifact_prefix="$work/" "$work/corpus" "$seeds" >"$work/log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::new_units_added" "$work/log" | sed 's/^/   /'
    # Every unit libFuzzer kept must replay to the fuzzer's verdict (one
    # function decides the expectation for both): replay the grown corpus.
    units=$(ls "$work/corpus" | wc -l)
    # A unit the target itself never ran (UNRUN: over a budget, a table too
    # large to build) or refused as no case file (BAD: libFuzzer keeps such
    # byte-mutated texts for their parser coverage) replays as it fuzzed; a
    # FAIL is a mismatch: the fuzzer passed what replay fails.
    "$BUILD/tools/attncheck" replay --backend cpu --quiet --rows 16 --target "$t" "$work/corpus" \
      >"$work/replay.log" 2>&1 || true # judged from its report below (set -e)
    if ! grep -qE "^FAIL " "$work/replay.log" && grep -q " 0 failed" "$work/replay.log"; then
      echo "   replay of the $units units libFuzzer kept: $(tail -n 1 "$work/replay.log")"
    elif [ "$units" -gt 0 ]; then
      echo "   FAILED: the units libFuzzer kept do not replay to its verdict"
      grep -v "^PASS\|^REJECTED" "$work/replay.log" | tail -n 12 | sed 's/^/   | /'
      failed="$failed $t-replay"
    fi
  else
    echo "   FAILED: $t (log tail below; reproducers in $ART)"
    grep -v "^    #" "$work/log" | tail -n 25 | sed 's/^/   | /'
    # The input the mutator held when the process died: the reproducer of a
    # crash inside the mutator (then there is no crash- file; fuzz_entry.c).
    for a in "$work"/mutating-*; do
      [ -f "$a" ] && cp "$a" "$ART/$t-$(basename "$a")" &&
        echo "   under mutation: $ART/$t-$(basename "$a")   replay the mutator: $BUILD/fuzz/mutator_extremes --target $t --input $ART/$t-$(basename "$a")"
    done
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [ -f "$a" ] && cp "$a" "$ART/$t-$(basename "$a")" &&
        echo "   reproduce: $BUILD/fuzz/fuzz_$t $ART/$t-$(basename "$a")   explain: attncheck replay --target $t $ART/$t-$(basename "$a")"
    done
    failed="$failed $t"
  fi
  rm -rf "$work"
done
if [ -n "$failed" ]; then
  echo "fuzz/ci-short.sh: FAILED:$failed"
  exit 1
fi
echo "fuzz/ci-short.sh: all targets clean"
