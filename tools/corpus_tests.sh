#!/bin/sh
# The corpus's ctests (tools/CMakeLists.txt; corpus/README.md).
#   corpus_tests.sh reproduce WRITER SOURCE_DIR TMP
#     a fresh run of the writer into TMP equals corpus/ byte for byte for every
#     file it writes, and every committed seed (numbers 0001-0999) is one of them.
set -u
what=$1 prog=$2 src=$3 tmp=$4
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$tmp" && mkdir -p "$tmp" || exit 1

case $what in
reproduce)
  "$prog" --out "$tmp" || fail "the writer failed"
  n=0
  for f in $(cd "$tmp" && find . -type f | sed "s,^\./,," | sort); do
    n=$((n + 1))
    cmp "$tmp/$f" "$src/corpus/$f" || fail "$f: the writer's bytes differ from corpus/$f"
  done
  [ "$n" -gt 0 ] || fail "the writer wrote nothing"
  for p in "$src"/corpus/*/[0-9][0-9][0-9][0-9]-*; do
    rel=${p#"$src/corpus/"}
    case ${rel#*/} in 0*) ;; *) continue ;; esac        # 1000 and up: findings, added by hand
    case $rel in *.txt) continue ;; esac
    [ -f "$tmp/$rel" ] || fail "corpus/$rel is numbered as a seed (0001-0999) but the writer does not write it"
  done
  echo "corpus writer: $n files reproduced byte for byte"
  ;;
*) fail "unknown test $what" ;;
esac
