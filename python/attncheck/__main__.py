"""python -m attncheck verify DIR|FILE... [-- extra attncheck arguments]
python -m attncheck show FILE...

verify runs the attncheck binary (from $ATTNCHECK, else PATH, else a build
folder of the repository this package sits in or the current folder is in)
as `attncheck verify ARGS...` and returns its exit status. show prints a dump
file's metadata and tensors, read by this package alone."""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ._dump import load, tensor_dtypes

# Where a CMake build of the repository puts the binary, relative to its root.
_BUILD_BINARY = Path("build") / "tools" / "attncheck"


def find_binary():
    """The attncheck binary's path, or None."""
    env = os.environ.get("ATTNCHECK")
    if env:
        return env
    found = shutil.which("attncheck")
    if found:
        return found
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for folder in [start] + list(start.parents):
            candidate = folder / _BUILD_BINARY
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def _verify(args):
    binary = find_binary()
    if binary is None:
        print("attncheck: no attncheck binary found: set $ATTNCHECK, put it on PATH, "
              "or build the repository (cmake -S . -B build && cmake --build build)",
              file=sys.stderr)
        return 2
    try:
        return subprocess.call([binary, "verify"] + args)
    except OSError as e:
        print("attncheck: cannot run %s: %s" % (binary, e), file=sys.stderr)
        return 2


def _show(paths):
    status = 0
    for path in paths:
        try:
            meta, arrays = load(path)
            dtypes = tensor_dtypes(path)
        except (OSError, ValueError) as e:
            print("%s: %s" % (path, e), file=sys.stderr)
            status = 1
            continue
        print(path)
        print("  " + " ".join("%s=%s" % (k, meta[k]) for k in meta if k not in ("format", "version")))
        for name in sorted(arrays):
            print("  %-14s %-4s %s" % (name, dtypes[name], list(arrays[name].shape)))
    return status


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            print("usage: python -m attncheck verify DIR|FILE... [attncheck verify options]")
            return 0 if len(argv) >= 2 else 2
        return _verify(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m attncheck",
                                     description="attncheck dump files: verify or show them")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="run `attncheck verify` on dump files or folders")
    show = sub.add_parser("show", help="print a dump file's metadata and tensors")
    show.add_argument("files", nargs="+")
    ns = parser.parse_args(argv)
    return _show(ns.files)


if __name__ == "__main__":
    sys.exit(main())
