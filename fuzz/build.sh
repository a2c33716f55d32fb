#!/bin/sh
# Builds the libFuzzer targets (fuzz_layout, fuzz_combine, fuzz_api,
# fuzz_casefile) with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# into build-fuzz/fuzz/, a build of its own beside the normal one. Every
# library (case model, kernels' CPU models, oracle, verdict) is instrumented
# for coverage and the sanitizers; CUDA is off (these are CPU targets).
#   fuzz/build.sh [BUILD_DIR]        (default build-fuzz, from the repository root)
# Environment: CC / CXX (default clang-14 / clang++-14, else clang / clang++),
# AC_FUZZ_SANITIZERS (default address,undefined).
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build-fuzz}
pick() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 && { echo "$c"; return; }; done; echo ""; }
CC=${CC:-$(pick clang-14 clang)}
CXX=${CXX:-$(pick clang++-14 clang++)}
if [ -z "$CC" ] || [ -z "$CXX" ]; then
  echo "fuzz/build.sh: clang not found (libFuzzer comes with clang); set CC and CXX" >&2
  exit 2
fi
SAN=${AC_FUZZ_SANITIZERS:-address,undefined}
# -fno-sanitize-recover: a UBSan report is a crash, hence a finding.
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=$SAN -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link"
GEN=""
command -v ninja >/dev/null 2>&1 && GEN="-G Ninja"
cmake -S . -B "$BUILD" $GEN -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=$SAN" \
  -DAC_ENABLE_CUDA=OFF -DAC_FUZZ=ON -DAC_FUZZ_ENGINE="-fsanitize=fuzzer" >/dev/null
targets=$(fuzz/targets.sh | awk '{printf "fuzz_%s ", $1}')
# shellcheck disable=SC2086
cmake --build "$BUILD" --target $targets attncheck mutator_extremes \
  -j"$(nproc 2>/dev/null || echo 2)"
echo "fuzz/build.sh: targets in $BUILD/fuzz: $(cd "$BUILD/fuzz" && ls $targets | tr '\n' ' ')"
