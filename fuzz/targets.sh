#!/bin/sh
# Prints the fuzz targets of fuzz/ac_fuzz_targets.def, one "name seed_dir
# uses_kernels" line each, for the scripts (the C table and CMake read the
# same file).
sed -n 's/^AC_FUZZ_TARGET(\([a-z0-9_]*\), "\([^"]*\)", \([01]\),.*/\1 \2 \3/p' "$(dirname "$0")/ac_fuzz_targets.def"
