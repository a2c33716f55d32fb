#!/usr/bin/env bash
# One GPU round of attncheck.
#   scripts/gpu-round.sh build    here (nvcc, no GPU): builds build-gpu/ with the
#                                 kernels for sm_90 and static MPFR/GMP/cudart,
#                                 and drops object files so only binaries travel
#   scripts/gpu-round.sh remote [check|bench|all]
#                                 on the Hopper host (device tool, carry build-gpu):
#                                 check: ctest -L gpu (oracle verdicts), kernel vs
#                                 CPU-model sweeps, compute-sanitizer on subsets;
#                                 bench: prefill and decode against SDPA peers
#                                 measured in the same run. Logs and tables go to
#                                 $OUT (or ./gpu-results); a short table prints last.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
B=build-gpu
case "$mode" in
build)
  set -e
  # Built in $B-work (kept, so the next round recompiles only what changed);
  # only binaries, libraries beside them and ctest files travel, in $B.
  W=$B-work
  cmake -S . -B $W -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  cmake --build $W -j"$(nproc)"
  # Each program embeds the kernels (13 MB): only those the host runs travel
  # (the carry is 64 MiB), with the ctest files, stripped of host debug info.
  rm -rf $B
  mkdir -p $B
  (cd $W && find . -name CTestTestfile.cmake -o -name 'libcjson.so*' -o -name 'libattncheck_*plugin.so') |
    tar -C $W -cf - -T - | tar -C $B -xf -
  for t in tools/attncheck properties/property_gpu bench/prefill_bench bench/decode_bench; do
    [ -x $W/$t ] && install -D -m 755 -s $W/$t $B/$t
  done
  # ctest files name the work folder: point them at this one.
  find $B -name CTestTestfile.cmake -exec sed -i "s#/$W/#/$B/#g; s#/$W\"#/$B\"#g" {} +
  du -sh $B
  ;;
remote)
  what=${2:-all}
  # Logs gather in a scratch folder and travel back as one archive plus the
  # summary (the device tool returns at most 8 files).
  dest=${OUT:-$PWD/gpu-results}
  out=$(mktemp -d /tmp/gpu-round.XXXXXX)
  mkdir -p "$dest"
  # The logs travel back even when the round is cut short by a time limit.
  trap 'tar czf "$dest/gpu-round-logs.tgz" -C "$out" .' EXIT
  # CTestTestfile.cmake holds the build machine's absolute paths: recreate them.
  src=$(sed -n 's/^# Source directory: //p' $B/CTestTestfile.cmake)
  if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"; fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
  summary="$dest/summary.txt" # written as it goes: a round cut short still reports what ran
  : >"$summary"
  if [ "$what" = check ] || [ "$what" = all ]; then
    # -V: every test's own output in the log (the sweeps' group tables).
    ctest --test-dir $B -L gpu -j4 -V >"$out/ctest-gpu.log" 2>&1
    echo "ctest -L gpu: rc=$? $(grep -E 'tests passed|tests failed' "$out/ctest-gpu.log")" | tee -a "$summary"
    grep -E "Test +#" "$out/ctest-gpu.log" | sed 's/^[0-9]*: //' | tee -a "$summary"
    grep -hE "^[0-9]+: (prefill|decode|combine|store|group)" "$out/ctest-gpu.log" | sed 's/^[0-9]*: //' | sort -u >>"$summary"
    families=$($B/tools/attncheck families | cut -f1)
    [ -x $B/bench/prefill_bench ] && { $B/bench/prefill_bench --check >"$out/prefill-check.log" 2>&1;
      echo "prefill kernel vs model: rc=$? $(grep -cE '^FAIL' "$out/prefill-check.log") FAIL lines" >>"$summary"; }
    [ -x $B/bench/decode_bench ] && { $B/bench/decode_bench --check >"$out/decode-check.log" 2>&1;
      echo "decode kernels vs models: rc=$? $(grep -cE '^FAIL' "$out/decode-check.log") FAIL lines" >>"$summary"; }
    for fam in $families; do
      compute-sanitizer --tool memcheck --error-exitcode 9 $B/tools/attncheck sweep $fam --backend gpu --quick \
        >"$out/memcheck-$fam.log" 2>&1
      echo "memcheck $fam (quick sweep): rc=$? $(grep -h 'ERROR SUMMARY' "$out/memcheck-$fam.log" | tail -1)" >>"$summary"
    done
    compute-sanitizer --tool racecheck --error-exitcode 9 $B/tools/attncheck sweep prefill --backend gpu --quick \
      >"$out/racecheck-prefill.log" 2>&1
    echo "racecheck prefill (quick sweep): rc=$? $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$out/racecheck-prefill.log" | tail -1)" >>"$summary"
    compute-sanitizer --tool racecheck --error-exitcode 9 $B/tools/attncheck sweep decode --backend gpu --quick \
      >"$out/racecheck-decode.log" 2>&1
    echo "racecheck decode (quick sweep): rc=$? $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$out/racecheck-decode.log" | tail -1)" >>"$summary"
    # ctest ran the properties at the default size; once more with 4x longer sequences.
    [ -x $B/properties/property_gpu ] && { $B/properties/property_gpu --backend gpu --scale 4 >"$out/properties-gpu-x4.log" 2>&1;
      echo "properties on the kernels, --scale 4: rc=$? $(tail -1 "$out/properties-gpu-x4.log")" >>"$summary"; }
    # Cases a GPU fuzz campaign left to re-check (fuzz/gpu-fuzz.sh), when carried.
    for d in .gpu/fuzz/gpu-finding-*; do
      [ -d "$d" ] || continue
      $B/tools/attncheck replay --backend gpu --quiet "$d" >"$out/replay-$(basename "$d").log" 2>&1
      echo "replay $d on the kernels: rc=$? $(tail -1 "$out/replay-$(basename "$d").log")" >>"$summary"
      grep -A2 "^FAIL" "$out/replay-$(basename "$d").log" | head -n 12 >>"$summary"
    done
  fi
  if [ "$what" = bench ] || [ "$what" = all ]; then
    if [ -x $B/bench/prefill_bench ]; then
      $B/bench/prefill_bench --bench --reps 20 >"$out/prefill-ours.txt" 2>&1
      python3 bench/sdpa_peers.py --reps 20 --ours "$out/prefill-ours.txt" >"$out/prefill-peers.txt" 2>&1
      cat "$out/prefill-peers.txt" >>"$summary"
    fi
    if [ -x $B/bench/decode_bench ]; then
      python3 bench/sdpa_decode_peers.py >"$out/decode-peers.txt" 2>&1
      $B/bench/decode_bench --bench --peers "$out/decode-peers.txt" >"$out/decode-bench.txt" 2>&1
      cat "$out/decode-bench.txt" >>"$summary"
    fi
  fi
  echo "=================== summary"
  cat "$summary"
  ;;
*)
  echo "usage: scripts/gpu-round.sh build | remote [check|bench|all]" >&2
  exit 2
  ;;
esac
