#!/usr/bin/env bash
# One GPU round of attncheck.
#   scripts/gpu-round.sh build    here (nvcc, no GPU): builds build-gpu/ with the
#                                 kernels for sm_90 and static MPFR/GMP/cudart,
#                                 and drops object files so only binaries travel
#   scripts/gpu-round.sh remote [check|bench|all]
#                                 on the Hopper host (device tool, carry build-gpu):
#                                 check: ctest -L gpu (oracle verdicts), kernel vs
#                                 CPU-model sweeps, compute-sanitizer on subsets;
#                                 bench: the benchmark table (docs/PERF.md): every
#                                 row checked then timed, SDPA and flex peers and
#                                 the floors measured in the same run, merged into
#                                 perf-table.md / perf-table.csv. Logs and tables go to
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
    # The benchmark table (docs/PERF.md, "The benchmark table"): ours (each row
    # checked, then timed) and the floors, the peers, merged by perf_table.py.
    # Each step has a time limit, so a slow one cannot eat the round (about 400 s
    # at most, 200-250 s expected); progress goes to the *.err logs.
    tables="$out/ours-prefill.tsv $out/ours-decode.tsv $out/peers-prefill.tsv $out/peers-decode.tsv"
    [ -x $B/bench/prefill_bench ] && { timeout 100 $B/bench/prefill_bench --table --reps 20 \
      >"$out/ours-prefill.tsv" 2>"$out/ours-prefill.err";
      echo "prefill table (ours): rc=$? $(grep -c '^ROW' "$out/ours-prefill.tsv") rows, $(grep -c 'FAIL' "$out/ours-prefill.tsv") FAIL" | tee -a "$summary"; }
    [ -x $B/bench/decode_bench ] && { timeout 80 $B/bench/decode_bench --table --reps 30 \
      >"$out/ours-decode.tsv" 2>"$out/ours-decode.err";
      echo "decode/combine/store table (ours): rc=$? $(grep -c '^ROW' "$out/ours-decode.tsv") rows, $(grep -c 'FAIL' "$out/ours-decode.tsv") FAIL" | tee -a "$summary"; }
    timeout 70 python3 bench/sdpa_peers.py --table --reps 20 >"$out/peers-prefill.tsv" 2>"$out/peers-prefill.err"
    echo "prefill peers: rc=$? $(grep -c '^PEER' "$out/peers-prefill.tsv") lines" | tee -a "$summary"
    timeout 150 python3 bench/sdpa_decode_peers.py --table --reps 30 --flex-budget 80 \
      >"$out/peers-decode.tsv" 2>"$out/peers-decode.err"
    echo "decode peers: rc=$? $(grep -c '^PEER' "$out/peers-decode.tsv") lines" | tee -a "$summary"
    for f in $tables; do [ -e "$f" ] || : >"$f"; done
    python3 bench/perf_table.py $tables --csv "$dest/perf-table.csv" >"$dest/perf-table.md" 2>&1
    echo "perf_table: rc=$? (1: a row failed its check)" | tee -a "$summary"
    grep -h '^FAIL' "$out"/ours-*.err | head -n 20 >>"$summary"
    cat "$dest/perf-table.md" >>"$summary"
  fi
  echo "=================== summary"
  cat "$summary"
  ;;
*)
  echo "usage: scripts/gpu-round.sh build | remote [check|bench|all]" >&2
  exit 2
  ;;
esac
