#!/usr/bin/python3
"""Hostile inputs through the entry points that read user files: case files
(`attncheck describe`, `replay`), corpus folders, non-regular files, cases
over the budget. Each input must be answered within a time limit and under
a memory cap (RLIMIT_AS) with the exit code and the named error this file
expects for it: never a hang, a crash, or a pass.

The flags of every subcommand have their own test (tests/test_cli.py).

  test_hostile.py ATTNCHECK SOURCE_DIR
"""
import os
import resource
import subprocess
import sys
import tempfile

MEM_CAP = 2 << 30      # bytes of address space a run may take
TIME_CAP = 30          # seconds an answer may take (a refusal is immediate)
failures, checks = [], 0


def limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEM_CAP, MEM_CAP))


def run(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TIME_CAP, preexec_fn=limit,
                           stdin=subprocess.DEVNULL, errors="replace")
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return None, "(no answer after %d s)" % TIME_CAP


def expect(what, argv, rc_want, *needles):
    global checks
    checks += 1
    rc, out = run(argv)
    if rc != rc_want:
        failures.append("%s: exit %s, want %d\n    $ %s\n    %s" % (what, rc, rc_want, " ".join(argv), out.strip()[-400:]))
        return
    missing = [n for n in needles if n not in out]
    if missing:
        failures.append("%s: output lacks %r\n    $ %s\n    %s" % (what, missing, " ".join(argv), out.strip()[-400:]))


def main():
    tool, src = sys.argv[1], sys.argv[2]
    base_path = os.path.join(src, "corpus/layout/0001-prefill-identity-block16.case")
    base = open(base_path).read()
    lines = base.split("\n")
    tmp = tempfile.mkdtemp(prefix="hostile-")
    variants = []  # (name, bytes): each is broken as a case file

    def add(name, text):
        variants.append((name, text.encode() if isinstance(text, str) else text))

    keys = [l.split(" ", 1)[0] for l in lines if l and not l.startswith("attncheck-case")]
    for i, l in enumerate(lines):
        if not l or l.startswith("attncheck-case"):
            continue
        key = l.split(" ", 1)[0]
        rest = lines[:i] + lines[i + 1:]
        if key not in ("note", "slot_mapping"):  # optional keys may go
            add("missing-" + key, "\n".join(rest))
        if key == "note":  # notes may span several lines
            continue
        add("twice-" + key, "\n".join(lines[:i + 1] + [l] + lines[i + 1:]))
        if key == "title":
            continue
        add("letters-" + key, "\n".join(lines[:i] + [key + " abc"] + lines[i + 1:]))
        if key not in ("scale", "mask_density"):  # 1e23 is a float: the validation's business, below
            add("huge-" + key, "\n".join(lines[:i] + [key + " 99999999999999999999999"] + lines[i + 1:]))
    for cut in (15, 40, 120, len(base) // 2, len(base) - 2):
        add("truncated-%d" % cut, base[:cut])
    add("crlf", base.replace("\n", "\r\n"))
    add("nul-byte", base.replace("dtype bf16", "dtype bf\0" + "16"))
    add("unknown-key", base.replace("dist normal", "dist normal\nflavour vanilla"))
    add("version-99", base.replace("attncheck-case 1", "attncheck-case 99"))
    add("overlong-number", base.replace("seed 1", "seed 1" + "0" * 200000))
    add("negative-table", base.replace("block_table 0: 0 1 -1 -1", "block_table 0: 0 1 -1"))
    for k, (name, data) in enumerate(variants):
        name = "%03d-%s" % (k, name)
        path = os.path.join(tmp, name + ".case")
        with open(path, "wb") as f:
            f.write(data)
        expect("describe " + name, [tool, "describe", path], 2, "AC_ERR_")
        # In a target's folder a broken case file is never replayed as fuzzer bytes.
        d = os.path.join(tmp, "%03d" % k, "layout")  # a target's folder, as in corpus/
        os.makedirs(d)
        os.rename(path, os.path.join(d, name + ".case"))
        expect("replay " + name, [tool, "replay", "--backend", "cpu", "--quiet", d], 2, "BAD", "AC_ERR_PARSE"
               if False else "line", "unreadable")
        # Named as a layout input anywhere, it is refused just the same.
        expect("replay --target layout " + name,
               [tool, "replay", "--backend", "cpu", "--quiet", "--target", "layout", os.path.join(d, name + ".case")],
               2, "BAD")
    # Bytes that do not claim to be a case file are fuzzer units: replayed as
    # the layout target decodes them, to the verdict the fuzzer gave them.
    for name, data in (("empty", b""), ("five-bytes", b"attnc"), ("garbage", bytes(range(256)) * 4)):
        d = os.path.join(tmp, "raw-" + name, "layout")
        os.makedirs(d)
        open(os.path.join(d, name), "wb").write(data)
        expect("replay raw unit " + name, [tool, "replay", "--backend", "cpu", "--quiet", d], 0, "replay (cpu-model): 1 files")
    # Not regular files.
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    expect("describe a FIFO", [tool, "describe", fifo], 2, "a FIFO, not a regular file")
    expect("replay a FIFO", [tool, "replay", "--backend", "cpu", "--target", "layout", fifo], 2, "a FIFO")
    expect("describe /dev/zero", [tool, "describe", "/dev/zero"], 2, "character device")
    expect("replay /dev/zero", [tool, "replay", "--backend", "cpu", "--target", "layout", "/dev/zero"], 2, "character device")
    expect("describe a folder", [tool, "describe", tmp], 2, "a folder")
    expect("describe a missing file", [tool, "describe", os.path.join(tmp, "nope")], 2, "cannot open")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    expect("replay an empty folder", [tool, "replay", "--backend", "cpu", empty], 2, "no inputs in this folder")
    # Valid cases over the budget: refused by name at once, never run for hours.
    big = base.replace("seqlen_q 5 3", "seqlen_q 200000 3").replace("seqlen_k 20 33", "seqlen_k 200000 33") \
              .replace("paged 1", "paged 0").replace("block_table 0: 0 1 -1 -1\n", "").replace("block_table 1: 2 3 4 -1\n", "") \
              .replace("max_blocks_per_seq 4", "max_blocks_per_seq 0").replace("num_blocks 5", "num_blocks 0") \
              .replace("block_size 16", "block_size 0")
    p = os.path.join(tmp, "big.case")
    open(p, "w").write(big)
    expect("replay 200k x 200k", [tool, "replay", "--backend", "cpu", "--quiet", p], 2, "AC_ERR_BUDGET")
    pool = base.replace("block_size 16", "block_size 2147483647").replace("num_blocks 5", "num_blocks 2147483647")
    p = os.path.join(tmp, "pool.case")
    open(p, "w").write(pool)
    expect("replay an INT32_MAX pool", [tool, "replay", "--backend", "cpu", "--quiet", p], 2, "AC_ERR_BUDGET")
    # Sparse cases (docs/DATA.md): reserved memory is still bounded and named.
    sparse = base.replace("special none", "special sparse")
    p = os.path.join(tmp, "sparse-mask.case")
    open(p, "w").write(sparse.replace("mask none", "mask bool"))
    expect("replay sparse with a mask", [tool, "replay", "--backend", "cpu", "--quiet", p], 2, "AC_ERR_UNSUPPORTED",
           "the file expects ok")
    p = os.path.join(tmp, "sparse-int32max-pool.case")
    open(p, "w").write(sparse.replace("block_size 16", "block_size 2147483647").replace("num_blocks 5", "num_blocks 2147483647"))
    expect("replay a sparse INT32_MAX pool", [tool, "replay", "--backend", "cpu", "--quiet", p], 2, "AC_ERR_BUDGET")
    p = os.path.join(tmp, "sparse-past-address-cap.case")
    open(p, "w").write(sparse.replace("num_blocks 5", "num_blocks 40000000"))
    expect("replay a sparse pool past the address-space cap", [tool, "replay", "--backend", "cpu", "--quiet", p], 2,
           "AC_ERR_NOMEM", "k/v: out of memory")
    # A file that says ok for an input the rules reject is itself wrong.
    p = os.path.join(tmp, "density.case")
    open(p, "w").write(base.replace("mask_density 0x1.8p-1", "mask_density 1e23"))
    expect("replay a density of 1e23", [tool, "replay", "--backend", "cpu", "--quiet", p], 2, "the file expects ok",
           "AC_ERR_SHAPE")
    liar = base.replace("heads_kv 2", "heads_kv 3")
    p = os.path.join(tmp, "liar.case")
    open(p, "w").write(liar)
    expect("replay expect ok on an invalid case", [tool, "replay", "--backend", "cpu", "--quiet", p], 2,
           "BAD", "the file expects ok", "AC_ERR_GQA")
    print("hostile inputs: %d checks, %d failed (time cap %d s, memory cap %d MiB each)"
          % (checks, len(failures), TIME_CAP, MEM_CAP >> 20))
    for f in failures[:30]:
        print("FAIL", f)
    sys.exit(1 if failures or checks < 100 else 0)


if __name__ == "__main__":
    main()
