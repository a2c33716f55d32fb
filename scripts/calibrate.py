#!/usr/bin/env python3
"""Calibrates the verdict in both directions on the CPU models: the worst
normalised error of the correct models over the default sweep, against the
normalised error each injected bug produces on the same cases.

usage: scripts/calibrate.py BUILD_DIR [--quick]   (writes a Markdown table to stdout)
"""
import csv, os, statistics, subprocess, sys, tempfile

BUGS = ["scale-one", "gqa-mod", "top-left", "causal-off-by-one", "drop-last-key", "store-pad-write",
        "tail-unmasked", "combine-no-inf-guard", "lse-base2", "skip-block-first"]
FAMILIES = ["prefill", "decode", "combine", "store"]


def sweep(build, family, bug, quick):
    with tempfile.NamedTemporaryFile(suffix=".tsv") as f:
        cmd = [os.path.join(build, "tools", "attncheck"), "sweep", family, "--backend", "cpu", "--tsv", f.name]
        if quick:
            cmd.append("--quick")
        if bug:
            cmd += ["--bug", bug]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = list(csv.DictReader(open(f.name), delimiter="\t"))
    # one number per case: the worse of the output and the LSE normalised errors
    return [(int(r["pass"]), max(float(r["r"]), float(r["lse_r"]))) for r in rows]


def fmt(x):
    return "inf" if x == float("inf") else f"{x:.3g}"


def main():
    build = sys.argv[1]
    quick = "--quick" in sys.argv
    print("| family | correct: cases, worst r | bug | caught | smallest r of a caught case | median r |")
    print("| --- | --- | --- | --- | --- | --- |")
    for fam in FAMILIES:
        base = sweep(build, fam, None, quick)
        worst = max(r for _, r in base) if base else 0.0
        head = f"| {fam} | {len(base)}, {fmt(worst)} |"
        for bug in BUGS:
            res = sweep(build, fam, bug, quick)
            caught = [r for ok, r in res if not ok]
            if not caught:
                continue  # the bug does not touch this family's code
            print(f"{head} {bug} | {len(caught)}/{len(res)} | {fmt(min(caught))} | {fmt(statistics.median(caught))} |")
            head = "| | |"
        sys.stdout.flush()


if __name__ == "__main__":
    main()
