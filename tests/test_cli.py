#!/usr/bin/python3
"""The command lines of the suite's programs, from the outside.

Every bad use of a flag (a missing value, a non-number, trailing junk, a
negative where unsigned is meant, a value out of range, an unknown option,
an unknown bug / target / property / family name, a bad regex, a path that
cannot be written) must exit 2 before any work (nothing on stdout) with a
message on stderr that names the flag. Every subcommand answers --help
(exit 0), `attncheck --version` prints CMake's project version, and
--filter keeps exactly the cases whose line matches.

  test_cli.py --attncheck PATH --property-gpu PATH --oracle-dump PATH
              --oracle-bench PATH --version V --source DIR
              [--prefill-bench PATH] [--decode-bench PATH]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []
checks = 0


def run(argv, timeout=120):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, ATTNCHECK_SEED="1"))
    except subprocess.TimeoutExpired as e:  # it went to work instead of refusing
        return -1, "(still running after %d s) " % timeout + (e.stdout or b"").decode(errors="replace"), ""
    return p.returncode, p.stdout, p.stderr


def fail(what, argv, rc, out, err):
    failures.append("%s\n    $ %s\n    exit %d\n    stdout: %s\n    stderr: %s" % (
        what, " ".join(repr(a) if (" " in a or not a) else a for a in argv), rc,
        out.strip()[:300], err.strip()[:300]))


def bad(argv, *needles):
    """A refused command line: exit 2, nothing on stdout (no work began),
    and every needle (the flag, what is wrong) in the message."""
    global checks
    checks += 1
    rc, out, err = run(argv, timeout=10)  # a refusal is immediate
    if rc != 2:
        fail("expected exit 2", argv, rc, out, err)
    elif out.strip():
        fail("expected no output on stdout (work began?)", argv, rc, out, err)
    else:
        missing = [n for n in needles if n not in err]
        if missing:
            fail("message lacks %r" % missing, argv, rc, out, err)


def good(argv, *needles, rc_want=0, timeout=120):
    global checks
    checks += 1
    rc, out, err = run(argv, timeout=timeout)
    if rc != rc_want:
        fail("expected exit %d" % rc_want, argv, rc, out, err)
        return out
    missing = [n for n in needles if n not in out]
    if missing:
        fail("stdout lacks %r" % missing, argv, rc, out, err)
    return out


def tsv_rows(path):
    """The rows of a TSV the run wrote (header dropped); [] if it wrote none."""
    try:
        with open(path) as f:
            return [l.rstrip("\n").split("\t") for l in f][1:]
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attncheck", required=True)
    ap.add_argument("--property-gpu", required=True)
    ap.add_argument("--oracle-dump", required=True)
    ap.add_argument("--oracle-bench", required=True)
    ap.add_argument("--prefill-bench")
    ap.add_argument("--decode-bench")
    ap.add_argument("--version", required=True)
    ap.add_argument("--source", required=True)
    a = ap.parse_args()
    for k in ("attncheck", "property_gpu", "oracle_dump", "oracle_bench", "prefill_bench", "decode_bench", "source"):
        if getattr(a, k):
            setattr(a, k, os.path.abspath(getattr(a, k)))
    A = a.attncheck
    corpus = os.path.join(a.source, "corpus")
    tmp = tempfile.mkdtemp(prefix="test_cli.")
    os.chdir(tmp)  # whatever a program writes by mistake ("--tsv --quick") lands here
    no_dir = os.path.join(tmp, "no", "such", "dir")
    blocker = os.path.join(tmp, "a-file")  # a file where a folder is wanted
    open(blocker, "w").close()

    # ---- attncheck run / sweep --------------------------------------------------
    for cmd in (["run"], ["sweep", "prefill"]):
        p = "attncheck " + cmd[0] + ":"
        bad([A] + cmd + ["--seed", "abc"], p, "--seed abc: not a number")
        bad([A] + cmd + ["--seed", "-1"], p, "--seed -1: must not be negative")
        bad([A] + cmd + ["--seed"], p, "--seed: missing value")
        bad([A] + cmd + ["--seed", "12x"], "--seed 12x: not a number")
        bad([A] + cmd + ["--seed", "99999999999999999999999"], "--seed 99999999999999999999999: out of range")
        bad([A] + cmd + ["--seed", ""], "--seed '': not a number")
        bad([A] + cmd + ["--backend", "tpu"], "--backend tpu: expected auto, cpu or gpu")
        bad([A] + cmd + ["--bug", "typo"], "--bug typo: unknown bug", "scale-one", "skip-block-first")
        bad([A] + cmd + ["--tsv", os.path.join(no_dir, "x.tsv")], "--tsv", "cannot write")
        bad([A] + cmd + ["--tsv", "--quick"], "--tsv: missing value")
        bad([A] + cmd + ["--png", os.path.join(blocker, "pics")], "--png")
        bad([A] + cmd + ["--filter", "("], "--filter '(': bad regular expression")
        bad([A] + cmd + ["--filter", "a{2,1}"], "--filter 'a{2,1}': bad regular expression")
        bad([A] + cmd + ["--filter"], "--filter: missing value")
        bad([A] + cmd + ["--frob"], "--frob: unknown option")
        bad([A] + cmd + ["--quick=1"], "--quick: takes no value")
    bad([A, "run", "--b", "cpu"], "--b: ambiguous (--backend, --bug)")
    bad([A, "run", "--backend", "gpu", "--bug", "gqa-mod"], "--bug gqa-mod: bugs are injected into the CPU models only")
    bad([A, "e2e", "--backend", "gpu", "--bug", "gqa-mod"], "--bug gqa-mod: bugs are injected into the CPU models only")
    bad([A, "run", "nosuch"], "nosuch: unknown family", "prefill")
    bad([A, "sweep"], "attncheck sweep:", "one FAMILY")
    bad([A, "sweep", "prefill", "decode"], "one FAMILY")
    # a bad flag after a good one still stops everything
    bad([A, "run", "--backend", "cpu", "--quick", "--seed", "0x"], "--seed 0x: not a number")

    # ---- e2e -------------------------------------------------------------------------
    bad([A, "e2e", "--seed", "x"], "attncheck e2e:", "--seed x: not a number")
    bad([A, "e2e", "--bug", "typo"], "--bug typo: unknown bug")
    bad([A, "e2e", "--backend"], "--backend: missing value")
    bad([A, "e2e", "--filter", "x"], "--filter: unknown option")
    bad([A, "e2e", "extra"], "extra: unexpected argument")

    # ---- selftest --------------------------------------------------------------------
    bad([A, "selftest", "--cases", "0"], "attncheck selftest:", "--cases 0: out of range")
    bad([A, "selftest", "--cases", "abc"], "--cases abc: not a number")
    bad([A, "selftest", "--cases", "1.5"], "--cases 1.5: not a number")
    bad([A, "selftest", "--cases", "99999999999"], "--cases 99999999999: out of range")
    bad([A, "selftest", "--seed", "-5"], "--seed -5: must not be negative")
    bad([A, "selftest", "--bug", "typo"], "--bug typo: unknown bug")
    bad([A, "selftest", "--nope"], "--nope: unknown option")

    # ---- describe --------------------------------------------------------------------
    bad([A, "describe"], "attncheck describe:", "no case file")
    bad([A, "describe", "--x"], "--x: unknown option")

    # ---- fuzz ------------------------------------------------------------------------
    bad([A, "fuzz", "layout", "--seconds", "abc"], "attncheck fuzz:", "--seconds abc: not a number")
    bad([A, "fuzz", "layout", "--seconds", "0"], "--seconds 0: out of range")
    bad([A, "fuzz", "layout", "--seconds", "nan"], "--seconds nan: not a number")
    bad([A, "fuzz", "layout", "--jobs", "0"], "--jobs 0: out of range")
    bad([A, "fuzz", "layout", "--jobs"], "--jobs: missing value")
    bad([A, "fuzz", "layout", "--rows", "-3"], "--rows -3: out of range")
    bad([A, "fuzz", "layout", "--max-len", "99999999999"], "--max-len 99999999999: out of range")
    bad([A, "fuzz", "layout", "--seed", "-1"], "--seed -1: must not be negative")
    bad([A, "fuzz", "layout", "--gpus", "x"], "--gpus x: not a number")
    bad([A, "fuzz", "layout", "--backend", "tpu"], "--backend tpu")
    bad([A, "fuzz", "nosuch"], "nosuch: unknown target", "layout")
    bad([A, "fuzz"], "no TARGET")

    # ---- replay ----------------------------------------------------------------------
    store = os.path.join(corpus, "store")
    bad([A, "replay", "--rows", "abc", store], "attncheck replay:", "--rows abc: not a number")
    bad([A, "replay", "--rows", "-1", store], "--rows -1: out of range")
    bad([A, "replay", "--target", "nope", store], "--target nope: unknown target")
    bad([A, "replay", "--filter", "(", store], "--filter '(': bad regular expression")
    bad([A, "replay", "--backend"], "--backend: missing value")
    bad([A, "replay", "--png", os.path.join(blocker, "pics"), store], "--png")
    bad([A, "replay"], "no FILE or DIR")
    bad([A, "replay", "--quiet=yes", store], "--quiet: takes no value")

    # ---- property_gpu ----------------------------------------------------------------
    P = a.property_gpu
    bad([P, "--max", "-1"], "property_gpu:", "--max -1: out of range")
    bad([P, "--scale", "0"], "--scale 0: out of range")
    bad([P, "--seed", "abc"], "--seed abc: not a number")
    bad([P, "--bug", "typo"], "--bug typo: unknown bug")
    bad([P, "--prop", "nope"], "--prop nope: unknown property", "scale")
    bad([P, "--backend", "tpu"], "--backend tpu")
    bad([P, "--backend", "gpu", "--max", "x"], "--max x: not a number")  # before the device probe
    bad([P, "--bug", "gqa-mod"], "--bug gqa-mod: bugs are injected into the CPU models only")  # default: gpu

    # ---- oracle_dump, oracle_bench -----------------------------------------------------
    D = a.oracle_dump
    bad([D, "--cases", "-1"], "oracle_dump:", "--cases -1: out of range")
    bad([D, "--mode", "fastest"], "--mode fastest: expected fast or mpfr")
    bad([D, "--seed", "x"], "--seed x: not a number")
    bad([D, "60"], "60: unexpected argument")
    B = a.oracle_bench
    bad([B, "--threads", "x"], "oracle_bench:", "--threads x: not a number")
    bad([B, "--threads", "-1"], "--threads -1: out of range")
    bad([B, "2"], "2: unexpected argument")

    # ---- the CUDA benches, where built ---------------------------------------------------
    for k in ("prefill_bench", "decode_bench"):
        if getattr(a, k) and not os.access(getattr(a, k), os.X_OK):
            print("note: %s not built (%s): its checks skipped" % (k, getattr(a, k)))
            setattr(a, k, None)
    if a.prefill_bench:
        bad([a.prefill_bench, "--reps", "5"], "prefill_bench:", "--reps 5: out of range")
        bad([a.prefill_bench, "--reps", "x"], "--reps x: not a number")
        bad([a.prefill_bench, "--frob"], "--frob: unknown option")
    if a.decode_bench:
        bad([a.decode_bench, "--peers", os.path.join(no_dir, "p.txt")], "decode_bench:", "--peers", "cannot read")
        bad([a.decode_bench, "--frob"], "--frob: unknown option")

    # ---- --help and --version ----------------------------------------------------------
    good([A, "--help"], "usage:", "attncheck run")
    for sub, flag in (("run", "--filter"), ("sweep", "--filter"), ("e2e", "--bug"), ("selftest", "--cases"),
                      ("describe", "FILE"), ("fuzz", "--seconds"), ("replay", "--filter")):
        good([A, sub, "--help"], "usage: attncheck " + sub, flag)
    good([P, "--help"], "usage: property_gpu", "--scale")
    good([D, "--help"], "usage: oracle_dump", "--mode")
    good([B, "--help"], "usage: oracle_bench", "--threads")
    out = good([A, "--version"])
    if out.strip() != "attncheck " + a.version:
        failures.append("attncheck --version printed %r, expected %r" % (out.strip(), "attncheck " + a.version))

    # ---- --filter keeps exactly the matching cases -----------------------------------------
    # Counted independently: the unfiltered run's TSV, matched here (the
    # regex means the same in POSIX ERE and Python).
    for fam, rx in (("combine", r"splits=(2|3) "), ("decode", r"fp16 .*D=64 ")):
        tsv_all = os.path.join(tmp, fam + "-all.tsv")
        tsv_f = os.path.join(tmp, fam + "-filtered.tsv")
        good([A, "sweep", fam, "--backend", "cpu", "--quick", "--tsv", tsv_all])
        rows = tsv_rows(tsv_all)
        want = [r for r in rows if re.search(rx, r[6])]
        out = good([A, "sweep", fam, "--backend", "cpu", "--quick", "--tsv", tsv_f, "--filter", rx],
                   "kept %d of %d cases" % (len(want), len(rows)))
        got = tsv_rows(tsv_f)
        if not 0 < len(want) < len(rows) or got != want:
            failures.append("sweep %s --filter %r: ran %d cases, expected the %d of %d whose line matches"
                            % (fam, rx, len(got), len(want), len(rows)))
    out = good([A, "sweep", "store", "--backend", "cpu", "--quick", "--filter", "no case has this line"],
               "kept 0 of")
    # replay: the line of each input (the case line here)
    prefill = os.path.join(corpus, "prefill")
    out_all = good([A, "replay", "--backend", "cpu", "--quiet", prefill], rc_want=0)
    lines = [l.split("  ", 1)[1] for l in out_all.splitlines() if re.match(r"(PASS|REJECTED|FAIL|SKIP) ", l)]
    rx = r"D=(80|96) |causal=TL"
    want = [l for l in lines if re.search(rx, l)]
    out = good([A, "replay", "--backend", "cpu", "--quiet", "--filter", rx, prefill],
               "kept %d of %d files" % (len(want), len(lines)))
    got = [l.split("  ", 1)[1] for l in out.splitlines() if re.match(r"(PASS|REJECTED|FAIL|SKIP) ", l)]
    if not 0 < len(want) < len(lines) or got != want:
        failures.append("replay --filter %r: replayed %d files, expected the %d of %d whose line matches"
                        % (rx, len(got), len(want), len(lines)))

    # ---- e2e --bug is honoured (it was ignored): a store bug fails steps ---------------------
    good([A, "e2e", "--backend", "cpu", "--quick", "--bug", "store-pad-write"], "injected bug: store-pad-write",
         "failed", rc_want=1)

    shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("test_cli: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
