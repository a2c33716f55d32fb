#!/bin/sh
# ctest install_consumer: installs the build into a fresh prefix, then builds
# tests/consumer/consumer.c outside the source and build trees against that
# prefix alone, twice (pkg-config + cc; a CMake project with
# find_package(attncheck)), and runs both. A header, library or dependency
# missing from the install fails it.
#   run.sh CMAKE BUILD_DIR SOURCE_DIR
# Works in a fresh folder under $TMPDIR (outside both trees), removed when
# the test passes and kept (its path printed) when it fails.
set -eu
CMAKE=$1 BUILD=$2 SRC=$3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/attncheck-install.XXXXXX")
trap 'rc=$?; if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "install_consumer: failed; files kept in $WORK"; fi' EXIT
PREFIX=$WORK/prefix
"$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log"
echo "installed into $PREFIX:"
(cd "$PREFIX" && find . -type f | sort | sed 's/^/  /')

# Only the prefix: a copy of the program away from the source tree, so no
# include path of the repository can leak in.
mkdir -p "$WORK/app"
cp "$SRC/tests/consumer/consumer.c" "$SRC/tests/consumer/CMakeLists.txt" "$WORK/app/"

echo "== pkg-config"
libdir=$(ls -d "$PREFIX"/lib*/pkgconfig | head -n 1)
PKG_CONFIG_PATH=$libdir
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs attncheck)

# Every installed header compiles on its own: what it includes was installed.
n=0
for h in "$PREFIX"/include/attncheck/*.h; do
  printf '#include <attncheck/%s>\n' "$(basename "$h")" >"$WORK/app/one.c"
  # shellcheck disable=SC2046
  ${CC:-cc} -std=c11 -Wall -Werror -fsyntax-only $(pkg-config --cflags attncheck) "$WORK/app/one.c" ||
    { echo "install_consumer: <attncheck/$(basename "$h")> does not compile alone"; exit 1; }
  n=$((n + 1))
done
echo "$n headers compile alone"
echo "cc consumer.c $flags"
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Werror -o "$WORK/app/consumer_pc" "$WORK/app/consumer.c" $flags
"$WORK/app/consumer_pc"

echo "== find_package(attncheck)"
"$CMAKE" -S "$WORK/app" -B "$WORK/app/build" -DCMAKE_PREFIX_PATH="$PREFIX" >"$WORK/app/configure.log" ||
  { cat "$WORK/app/configure.log"; exit 1; }
"$CMAKE" --build "$WORK/app/build" >"$WORK/app/build.log" || { cat "$WORK/app/build.log"; exit 1; }
"$WORK/app/build/consumer"

echo "== man page, binary"
test -f "$PREFIX/share/man/man1/attncheck.1"
"$PREFIX/bin/attncheck" describe "$SRC/corpus/prefill/0001"*.case >/dev/null
echo "install_consumer: both consumers passed"
