#!/usr/bin/env bash
# One GPU round of attncheck.
#   scripts/gpu-round.sh build    here (nvcc, no GPU): builds build-gpu/ with the
#                                 kernels for sm_90 and static MPFR/GMP/cudart
#   scripts/gpu-round.sh remote   on the Hopper host (device tool, carry build-gpu):
#                                 ctest -L gpu, compute-sanitizer on a subset,
#                                 benchmarks against SDPA peers; logs and a table
#                                 go to $OUT (or ./gpu-results)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
build)
  set -e
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  targets=(attncheck)
  for t in prefill_bench decode_bench property_gpu; do
    grep -q "^$t:" <(cmake --build build-gpu --target help | sed 's/^\.\.\. //; s/ .*//; s/$/:/') && targets+=("$t")
  done
  cmake --build build-gpu -j"$(nproc)" --target "${targets[@]}"
  # Only what the host needs travels: binaries, ctest files, python peers.
  find build-gpu -name '*.o' -delete
  du -sh build-gpu
  ;;
remote)
  out=${OUT:-$PWD/gpu-results}
  mkdir -p "$out"
  # CTestTestfile.cmake holds this build machine's absolute paths: recreate them.
  src=$(sed -n 's/^# Source directory: //p' build-gpu/CTestTestfile.cmake)
  if [ -n "$src" ] && [ ! -e "$src" ]; then mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"; fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
  {
    echo "== ctest -L gpu"
    ctest --test-dir build-gpu -L gpu --output-on-failure 2>&1 | tee "$out/ctest-gpu.log" | tail -n 40
    echo "== per-group tables"
    for fam in prefill decode combine store; do
      build-gpu/tools/attncheck sweep $fam --backend gpu --tsv "$out/sweep-$fam.tsv" 2>/dev/null | sed -n '/^group/,$p'
    done
    echo "== compute-sanitizer memcheck (quick subsets)"
    for fam in prefill decode combine store; do
      compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tools/attncheck sweep $fam --backend gpu --quick \
        > "$out/memcheck-$fam.log" 2>&1
      echo "memcheck $fam: exit $? ($(grep -c 'ERROR SUMMARY: 0 errors' "$out/memcheck-$fam.log") clean summaries)"
    done
    echo "== benchmarks"
    [ -x build-gpu/bench/prefill_bench ] && build-gpu/bench/prefill_bench 2>&1
    [ -f bench/sdpa_peers.py ] && PYTHONUNBUFFERED=1 python3 bench/sdpa_peers.py 2>&1
    [ -x build-gpu/bench/decode_bench ] && build-gpu/bench/decode_bench 2>&1
    [ -f bench/sdpa_decode_peers.py ] && PYTHONUNBUFFERED=1 python3 bench/sdpa_decode_peers.py 2>&1
  } 2>&1 | tee "$out/round.log"
  ;;
*)
  echo "usage: scripts/gpu-round.sh build|remote" >&2
  exit 2
  ;;
esac
