#!/bin/sh
# The corpus's ctests (tools/CMakeLists.txt; corpus/README.md).
#   corpus_tests.sh reproduce WRITER SOURCE_DIR TMP
#     a fresh run of the writer into TMP equals corpus/ byte for byte for every
#     file it writes, and every committed seed (numbers 0001-0999) is one of them.
#   corpus_tests.sh disabled ATTNCHECK SOURCE_DIR TMP
#     replay skips exactly the files corpus/DISABLED lists (proved on a temporary
#     corpus holding a failing file) and reports them as skipped.
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
disabled)
  c=$tmp/corpus
  mkdir -p "$c/prefill" || exit 1
  cp "$src/corpus/prefill/0001-contiguous-basic.case" "$c/prefill/" || exit 1
  # A file that fails: a rejected layout whose expectation says ok (replay
  # refuses such a file as bad input, exit 2: its expectation contradicts the rules).
  sed 's/^expect error AC_ERR_BLOCK_TABLE$/expect ok/' "$src/corpus/prefill/0900-err-table-entry-out-of-range.case" \
    >"$c/prefill/0900-broken.case" || exit 1
  replay() { "$prog" replay --backend cpu --quiet "$@"; }
  replay "$c/prefill" >"$tmp/log" 2>&1; rc=$?
  [ $rc -eq 2 ] || { cat "$tmp/log"; fail "without DISABLED the broken file must be refused (exit $rc, want 2)"; }
  # Entries name <folder>/<file>: the same name in another folder is not this file.
  printf 'decode/0900-broken.case another folder\nprefill/0900-broken.cas a prefix of the name\nprefill/0900-broken.case.old the name is a prefix\n' >"$c/DISABLED"
  replay "$c/prefill" >"$tmp/log" 2>&1; rc=$?
  [ $rc -eq 2 ] || { cat "$tmp/log"; fail "entries naming other files must not skip it (exit $rc, want 2)"; }
  printf '# comment\n\nprefill/0900-broken.case known to fail: this test flipped its expectation\n' >"$c/DISABLED"
  for arg in "$c/prefill" "$c/prefill/" "$c/prefill/0900-broken.case"; do
    replay "$arg" >"$tmp/log" 2>&1; rc=$?
    cat "$tmp/log"
    [ $rc -eq 0 ] || fail "replay $arg: the listed file must be skipped (exit $rc)"
    grep -q '^SKIP .*0900-broken.case  disabled: known to fail: this test flipped its expectation$' "$tmp/log" ||
      fail "replay $arg: no SKIP line with the reason"
  done
  (cd "$c/prefill" && replay 0900-broken.case) >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "relative name not skipped"; }
  replay "$c/prefill" >"$tmp/log" 2>&1
  grep -q ': 2 files: 1 passed, 0 rejected as expected, 0 failed, 1 disabled' "$tmp/log" ||
    { cat "$tmp/log"; fail "the other file must still run and pass"; }
  echo "DISABLED: the listed file is skipped with its reason, every other file runs"
  ;;
*) fail "unknown test $what" ;;
esac
