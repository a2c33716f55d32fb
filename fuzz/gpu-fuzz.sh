#!/bin/sh
# The fuzzers on the Hopper host (no clang there): the random walk with the
# structure-aware mutators on the CUDA kernels.
#   fuzz/gpu-fuzz.sh build          here: build-gpu-fuzz/ (nvcc, sm_90, static
#                                   cudart/MPFR/GMP) and a bundle in .gpu/fuzz/
#   fuzz/gpu-fuzz.sh remote [SECS]  on the host, from the repository root with
#                                   .gpu/fuzz carried: speed of one worker per
#                                   target, a layout campaign of SECS (default
#                                   300) with one worker per core on the GPU, the
#                                   corpus replayed on the kernels; logs, findings
#                                   and a table under $OUT (default .gpu/fuzz/out)
set -u
D=.gpu/fuzz
case "${1:-}" in
build)
  set -e
  cd "$(dirname "$0")/.."   # the repository (remote mode runs from its root already)
  cmake -S . -B build-gpu-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  cmake --build build-gpu-fuzz -j"$(nproc)" --target attncheck
  mkdir -p "$D/seeds"
  cp build-gpu-fuzz/tools/attncheck fuzz/gpu-fuzz.sh "$D/"
  rm -rf "$D/seeds"/*
  for s in layout combine-fuzz prefill decode combine store; do cp -r "corpus/$s" "$D/seeds/"; done
  ldd "$D/attncheck" | grep -v -E "linux-vdso|libc.so|libm.so|ld-linux|libgcc_s|libstdc|libpthread|libdl|librt" || true
  du -sh "$D"
  ;;
remote)
  SECS=${2:-300}
  O=${OUT:-$D/out}
  mkdir -p "$O"
  T=$D/attncheck
  cores=$(nproc)
  # Several host processes share one GPU badly (14 workers ran slower in total
  # than one on an H100): AC_GPU_FUZZ_WORKERS, default 2.
  workers=${AC_GPU_FUZZ_WORKERS:-2}
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$O/device.txt"
  echo "cores $cores, campaign workers $workers" | tee -a "$O/device.txt"
  speed() { # target backend seconds
    "$T" fuzz "$1" --walk --backend "$2" --jobs 1 --seconds "$3" --seed 1 --seeds "$D/seeds/$4" \
      --out "$O/speed-$1-$2" >"$O/speed-$1-$2.log" 2>&1
    sed -n "s/^  executions *\([0-9]*\) (\([0-9]*\)\/s).*/$1 $2 1-worker \1 \2/p" "$O/speed-$1-$2.log"
  }
  {
    speed layout gpu 15 layout
    speed layout cpu 8 layout
    speed combine gpu 10 combine-fuzz
  } | tee "$O/speed.txt"
  echo "== layout campaign on the GPU: $SECS s, $workers workers"
  "$T" fuzz layout --walk --backend gpu --jobs "$workers" --seconds "$SECS" --seed 7 --seeds "$D/seeds/layout" \
    --out "$O/campaign-layout" >"$O/campaign-layout.log" 2>&1
  grep -v "^\[fuzz" "$O/campaign-layout.log" | tail -n 25
  grep "^\[fuzz" "$O/campaign-layout.log" | tail -n 3
  echo "== corpus on the kernels"
  for s in layout combine-fuzz prefill decode combine store; do
    "$T" replay --backend gpu --quiet "$D/seeds/$s" >"$O/replay-$s.log" 2>&1
    echo "$s: $(tail -n 1 "$O/replay-$s.log")"
    grep -A1 "^FAIL" "$O/replay-$s.log" | head -n 6
  done
  echo "== table"
  printf '%-8s %-8s %-9s %10s %8s\n' target backend workers execs execs/s
  while read -r t b w n r; do printf '%-8s %-8s %-9s %10s %8s\n' "$t" "$b" "$w" "$n" "$r"; done <"$O/speed.txt"
  sed -n "s/^  executions *\([0-9]*\) (\([0-9]*\)\/s).*/layout   gpu      $workers-workers \1 \2/p" "$O/campaign-layout.log"
  sed -n 's/^  findings *\(.*\)/campaign findings: \1/p' "$O/campaign-layout.log"
  ;;
*)
  echo "usage: fuzz/gpu-fuzz.sh build | remote [SECONDS]" >&2
  exit 2
  ;;
esac
