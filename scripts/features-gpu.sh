#!/usr/bin/env bash
# Windows, softcap, ALiBi and sinks on the Hopper host, in one device call
# (carry build-gpu, built here by `scripts/gpu-round.sh build`):
#   scripts/features-gpu.sh [BRIDGE_ADAPTER]
# GPU 0, in order: ctest -L gpu (the sweeps, laws and corpus with the features in
#   them); the kernels against their CPU models and the verdict on every feature group
#   (prefill_bench --check, decode_bench --check); compute-sanitizer memcheck on quick
#   sweeps with all four features on, racecheck on prefill; then the speed of each
#   feature off and on (prefill_bench / decode_bench --bench --features ...).
# GPU 1 (a second GPU, when the host has one) at the same time: a third-party kernel
#   through the Python bridge (default flex_gqa_expanded) on quick sweeps with each
#   feature on, one flag set per sweep.
# Everything goes to $OUT (or ./features-results): summary.txt (also printed last)
# and features-logs.tgz. Exit 1 if a check failed.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-build-gpu}
A=$PWD/$B/tools/attncheck
adapter=${1:-flex_gqa_expanded}
dest=${OUT:-$PWD/features-results}
work=$(mktemp -d /tmp/features-gpu.XXXXXX)
mkdir -p "$dest"
summary="$dest/summary.txt"
: >"$summary"
trap 'tar czf "$dest/features-logs.tgz" -C "$work" .' EXIT
say() { echo "$*" | tee -a "$summary"; }
# CTestTestfile.cmake holds the build machine's absolute paths: recreate them.
src=$(sed -n 's/^# Source directory: //p' $B/CTestTestfile.cmake)
if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"; fi
ngpu=$(nvidia-smi -L | wc -l)
say "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), $ngpu GPU(s)"
all4=(--window 64,0 --softcap 30 --alibi std --sinks 0.5)
# The K/V storage features (docs/CONTRACT.md section 13): an FP8 cache with a scale per KV head, D_v = 64.
kv=(--kv-format e4m3 --kv-scales head --head-dim-v 64)
wide=(--kv-format e5m2 --kv-scales head --head-dim-v 512)

# ---- GPU 1: a third-party kernel on the features, every sweep at once (they share the
# compile caches), all cut at 330 s ---------------------------------------------------------------
bridge() {
  export CUDA_VISIBLE_DEVICES=$1 PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
  export ATTNCHECK_BRIDGE_TIMEOUT=300 TORCHINDUCTOR_CACHE_DIR=$PWD/.gpu/inductor TRITON_CACHE_DIR=$PWD/.gpu/triton
  local r=$work/bridge f fam tag
  mkdir -p "$r"
  for f in "--window 16,0" "--window 32,8" "--softcap 5" "--alibi std" "--sinks 1.5" \
           "--kv-format e4m3 --kv-scales head" "--kv-format e5m2 --kv-scales 0.5,2" "--head-dim-v 64"; do
    for fam in prefill decode; do
      tag=$(echo "$fam $f" | tr -c 'a-z0-9\n' _)
      ( timeout 330 "$A" sweep $fam --quick $f --kernel "py:attncheck.adapters:$adapter" \
          --json "$r/$tag.jsonl" >"$r/$tag.log" 2>&1
        echo "$adapter $fam $f: rc=$? $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$r/$tag.log" | tail -1)" >"$r/$tag.result" ) &
    done
  done
  wait
  cat "$r"/*.result >"$r/result.txt"
}
if [ "$ngpu" -ge 2 ] && [ "$adapter" != none ]; then
  bridge 1 &
  bridge_pid=$!
fi

# ---- GPU 0: the bundled kernels; the checks side by side, each cut at 300 s ---------------------
export CUDA_VISIBLE_DEVICES=0
fail=0
step() { # name, command...: runs it, rc in $work/<name>.rc
  local n=$1
  shift
  timeout "${CHECK_S:-300}" "$@" >"$work/$n.log" 2>&1
  echo $? >"$work/$n.rc"
}
step ctest-gpu ctest --test-dir $B -L gpu -j4 &
step prefill-check $B/bench/prefill_bench --check &
CHECK_S=420 step decode-check $B/bench/decode_bench --check & # both load paths, wide dims too: past 300 s
for k in prefill decode; do
  step memcheck-$k compute-sanitizer --tool memcheck --error-exitcode 9 "$A" sweep $k --backend gpu --quick "${all4[@]}" &
done
step racecheck-prefill compute-sanitizer --tool racecheck --error-exitcode 9 "$A" sweep prefill --backend gpu --quick "${all4[@]}" &
for k in prefill decode store; do
  step memcheck-kv-$k compute-sanitizer --tool memcheck --error-exitcode 9 "$A" sweep $k --backend gpu --quick "${kv[@]}" &
done
step racecheck-kv-prefill compute-sanitizer --tool racecheck --error-exitcode 9 "$A" sweep prefill --backend gpu --quick "${kv[@]}" &
# Decode's wide-dim path (D_v = 512 over every D_qk of the sweep: 2 or 3 chunks a lane, MLA's shape).
step memcheck-wide-decode compute-sanitizer --tool memcheck --error-exitcode 9 "$A" sweep decode --backend gpu --quick "${wide[@]}" &
wait $(jobs -p | grep -v "^${bridge_pid:-x}$")
for n in ctest-gpu prefill-check decode-check memcheck-prefill memcheck-decode racecheck-prefill \
         memcheck-kv-prefill memcheck-kv-decode memcheck-kv-store racecheck-kv-prefill memcheck-wide-decode; do
  rc=$(cat "$work/$n.rc")
  [ "$rc" != 0 ] && fail=1
  case $n in
  ctest-gpu) say "ctest -L gpu: rc=$rc $(grep -E 'tests passed|tests failed' "$work/$n.log")"
             grep -E "\*\*\*Failed|Timeout|Not Run" "$work/$n.log" | tee -a "$summary" ;;
  *-check) say "${n%-check}_bench --check: rc=$rc, $(grep -cE '^FAIL' "$work/$n.log") FAIL lines"
           grep -iE "window|softcap|alibi|sink|all four|features|fp8|e4m3|e5m2|dv|576" "$work/$n.log" | head -60 >>"$summary" ;;
  *-wide-*) say "$n, quick sweep with ${wide[*]}: rc=$rc $(grep -h 'ERROR SUMMARY' "$work/$n.log" | tail -1) $(grep -E '^[0-9]+ passed' "$work/$n.log" | tail -1)" ;;
  *-kv-*) say "$n, quick sweep with ${kv[*]}: rc=$rc $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$work/$n.log" | tail -1) $(grep -E '^[0-9]+ passed' "$work/$n.log" | tail -1)" ;;
  *) say "$n, quick sweep with ${all4[*]}: rc=$rc $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$work/$n.log" | tail -1) $(grep -E '^[0-9]+ passed' "$work/$n.log" | tail -1)" ;;
  esac
done
say ""
say "speed, each feature off and on (same shapes, same data; GPU 0 alone):"
timeout 150 $B/bench/prefill_bench --bench --features ${PREFILL_FEATURES:-none,window,softcap,alibi,sinks,all,fp8,all+fp8} >"$work/prefill-bench.log" 2>&1
cat "$work/prefill-bench.log" >>"$summary"
timeout 150 $B/bench/decode_bench --bench --features ${DECODE_FEATURES:-none,window,softcap,alibi,sinks,all,fp8} >"$work/decode-bench.log" 2>&1
cat "$work/decode-bench.log" >>"$summary"

if [ -n "${bridge_pid:-}" ]; then
  wait "$bridge_pid"
  tar czf "$dest/bridge-features.tgz" -C "$work" bridge
  say ""
  say "third-party kernel through the bridge:"
  cat "$work/bridge/result.txt" >>"$summary"
fi
exit $fail
