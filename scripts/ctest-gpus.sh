#!/usr/bin/env bash
# `ctest -L gpu` over every GPU of the host (docs/SCALING.md): writes ctest's
# resource spec with one "gpus" slot per device and runs the GPU tests that
# many at a time; each test gets one GPU (RESOURCE_GROUPS "gpus:1" in the
# CMake files, mapped to CUDA_VISIBLE_DEVICES by common/ac_devices.h).
#   scripts/ctest-gpus.sh BUILD_DIR [N] [extra ctest args...]
# N: GPUs to use (default: all that nvidia-smi lists).
set -euo pipefail
build=${1:?usage: ctest-gpus.sh BUILD_DIR [N] [ctest args...]}
shift
n=${1:-}
if [ -n "$n" ] && [ "$n" -eq "$n" ] 2>/dev/null; then shift; else n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
[ "${n:-0}" -ge 1 ] || { echo "ctest-gpus: no GPU listed by nvidia-smi" >&2; exit 77; }
spec=$(mktemp /tmp/ctest-gpus.XXXXXX.json)
trap 'rm -f "$spec"' EXIT
{
  printf '{"version": {"major": 1, "minor": 0}, "local": [{"gpus": ['
  for ((i = 0; i < n; i++)); do printf '%s{"id": "%d", "slots": 1}' "$([ $i -gt 0 ] && echo ,)" "$i"; done
  printf ']}]}\n'
} >"$spec"
echo "ctest-gpus: $n GPU(s), one test per GPU at a time"
ctest --test-dir "$build" -L gpu --resource-spec-file "$spec" -j "$n" "$@"
