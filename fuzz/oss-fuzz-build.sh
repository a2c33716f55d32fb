#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script: builds the four libFuzzer targets
# with the engine's $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE and puts
# into $OUT: fuzz_<target>, fuzz_<target>_seed_corpus.zip, fuzz_<target>.dict
# and fuzz_<target>.options. Use from the project's build.sh:
#     $SRC/attncheck/fuzz/oss-fuzz-build.sh
# ClusterFuzzLite: .clusterfuzzlite/ (Dockerfile, build.sh, project.yaml)
# and .github/workflows/cflite_*.yml. OSS-Fuzz: fuzz/oss-fuzz/ holds the
# projects/attncheck/ files. docs/FUZZING.md describes both, with a local run
# of this script under OSS-Fuzz's environment. Sanitizers: address,
# undefined. Memory sanitizer is not supported: MPFR/GMP come uninstrumented
# from apt.
# Build type None: the engine's $CFLAGS alone decide optimisation and debug
# info (no -O3/-DNDEBUG of ours on top). No unit tests: no Criterion needed.
SRC_ROOT=${SRC_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
OUT=${OUT:?OUT must name the output folder}
BUILD=${WORK:-/tmp}/attncheck-fuzz-build
cmake -S "$SRC_ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
  -DCMAKE_C_FLAGS="${CFLAGS:-}" -DCMAKE_CXX_FLAGS="${CXXFLAGS:-}" \
  -DAC_ENABLE_CUDA=OFF -DAC_BUILD_TESTS=OFF -DAC_FUZZ=ON \
  -DAC_FUZZ_ENGINE="${LIB_FUZZING_ENGINE:--fsanitize=fuzzer}"
targets=$("$SRC_ROOT/fuzz/targets.sh" | awk '{printf "fuzz_%s ", $1}')
# shellcheck disable=SC2086
cmake --build "$BUILD" --target $targets -j"$(nproc)"
for t in $("$SRC_ROOT/fuzz/targets.sh" | cut -d" " -f1); do
  seeds=$("$SRC_ROOT/fuzz/targets.sh" | awk -v t="$t" '$1 == t {print $2}')
  cp "$BUILD/fuzz/fuzz_$t" "$OUT/"
  (cd "$SRC_ROOT/corpus/$seeds" && zip -q -j "$OUT/fuzz_${t}_seed_corpus.zip" ./*)
  {
    echo "[libfuzzer]"
    echo "max_len = 65536"
    if [ -f "$SRC_ROOT/fuzz/dicts/$t.dict" ]; then
      cp "$SRC_ROOT/fuzz/dicts/$t.dict" "$OUT/fuzz_$t.dict"
      echo "dict = fuzz_$t.dict"
    fi
  } >"$OUT/fuzz_$t.options"
done
