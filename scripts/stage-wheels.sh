#!/usr/bin/env bash
# Python wheels too large for one device call's carry (64 MiB, docs/BRIDGE.md:
# FlashInfer's is 101 MB), taken to the GPU host in parts over several calls
# on one warm host, then installed there into an ignored folder.
#
#   here:    scripts/stage-wheels.sh split WHEEL_DIR [SIZE]
#              the wheels of WHEEL_DIR in one archive, cut into parts of SIZE
#              (split's notation; default 56m) under .gpu/stage/ (ignored by git), with their
#              sha256 sums; prints one device command per part
#   device:  scripts/stage-wheels.sh check
#              which parts are on the host (carry one per call: "carry":
#              [".gpu/stage/part-aa"]; an ignored folder survives between calls
#              while the host stays warm, so the earlier parts stay)
#   device:  scripts/stage-wheels.sh install [TARGET]
#              every part present and its sum right, the archive joined and its
#              wheels installed with pip --no-deps --no-index into TARGET
#              (default .gpu/py); then PYTHONPATH=TARGET
# A part missing or corrupt stops the install with its name (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=.gpu/stage
case "${1:-}" in
split)
  src=${2:?usage: stage-wheels.sh split WHEEL_DIR [SIZE]}
  size=${3:-56m}
  ls "$src"/*.whl >/dev/null
  rm -rf "$stage" && mkdir -p "$stage"
  tar -C "$src" -cf - $(cd "$src" && ls *.whl) | split -b "$size" - "$stage/part-"
  (cd "$stage" && sha256sum part-* >SHA256SUMS)
  (cd "$src" && ls -l *.whl | awk '{printf "  %8.1f MB  %s\n", $5 / 1e6, $9}')
  n=$(ls "$stage"/part-* | wc -l)
  echo "stage-wheels: $n part(s) of at most $size in $stage; one device call each:"
  for p in "$stage"/part-*; do
    echo "  carry [\"$p\", \"$stage/SHA256SUMS\"]  command: bash scripts/stage-wheels.sh check"
  done
  echo "  then: bash scripts/stage-wheels.sh install (with the last part, or in the call that uses them)"
  ;;
check)
  [ -f "$stage/SHA256SUMS" ] || { echo "stage-wheels: no $stage/SHA256SUMS here" >&2; exit 1; }
  (cd "$stage" && while read -r sum name; do
    if [ ! -f "$name" ]; then echo "missing  $name"
    elif echo "$sum  $name" | sha256sum -c --quiet - >/dev/null 2>&1; then echo "ok       $name"
    else echo "corrupt  $name"; fi
  done <SHA256SUMS)
  ;;
install)
  target=${2:-.gpu/py}
  [ -f "$stage/SHA256SUMS" ] || { echo "stage-wheels: no $stage/SHA256SUMS here" >&2; exit 1; }
  bad=$(bash "$0" check | grep -v '^ok' || true)
  [ -z "$bad" ] || { echo "stage-wheels: not all parts are here and right:"; echo "$bad"; exit 1; } >&2
  work=$(mktemp -d /tmp/stage-wheels.XXXXXX)
  cat "$stage"/part-* | tar -C "$work" -xf -
  python3 -m pip install --quiet --no-deps --no-index --target "$target" "$work"/*.whl
  rm -rf "$work"
  echo "stage-wheels: installed into $target: $(ls "$target" | grep -c dist-info) distributions"
  ;;
*)
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
