#!/bin/bash -eu
# OSS-Fuzz: projects/attncheck/build.sh. The engine sets $CC $CXX $CFLAGS
# $CXXFLAGS $LIB_FUZZING_ENGINE $WORK $OUT; the project's own script builds
# fuzz_layout, fuzz_combine, fuzz_api and fuzz_casefile into $OUT with their
# seed corpora (fuzz_<t>_seed_corpus.zip), dictionaries and options.
"$SRC/attncheck/fuzz/oss-fuzz-build.sh"
