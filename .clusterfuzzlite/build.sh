#!/bin/bash -eu
# ClusterFuzzLite's build step (inside the image of .clusterfuzzlite/Dockerfile,
# with $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $OUT set by the engine):
# the project's own script builds the four targets with their seeds,
# dictionaries and options.
"$SRC/attncheck/fuzz/oss-fuzz-build.sh"
