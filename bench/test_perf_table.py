#!/usr/bin/env python3
"""ctest perf_table_merge: bench/perf_table.py on a small fixture whose
numbers are worked out by hand, so the merge's arithmetic (rates, % of the
floor, ours/peer ratios, which peer line a row takes, a failed row without a
time) cannot rot unnoticed. Standard library only; exit 0 when all hold."""
import csv
import io
import os
import sys
import tempfile
from contextlib import redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_table  # noqa: E402

OURS = """DEVICE\tNVIDIA H200\t132 SMs\tL2 60 MB
FLOOR\tread_gbps\t4000.0\tGB/s
FLOOR\tcopy_gbps\t2500.0\tGB/s
some other output line
ROW\tprefill\tbf16\t128\tbr\tcontig\tB=2 H=32 S=8192\t4.00000\t1.000000e+12\tflop\tPASS\t0.3\t20\t1
ROW\tprefill\tbf16\t128\tbr\tpaged16\tB=2 H=32 S=8192\t8.00000\t1.000000e+12\tflop\tPASS\t0.25\t20\t1
ROW\tprefill\tfp16\t64\tnone\tcontig\tB=16 H=32 S=1024\t-\t1.000000e+11\tflop\tFAIL\t3.5\t0\t2
ROW\tdecode\tbf16\t128\tbr\tpaged16\tB=64 S=4096\t0.50000\t1.000000e+09\tbyte\tPASS\t0.1\t30\t1\t0.03125
ROW\tstore\tbf16\t128\t-\tpaged16\ttokens=64 Hkv=8\t0.01000\t1.000000e+07\tbyte\tPASS\t0\t30\t1024
"""
PEERS = """INFO\ttorch\t2.11.0
FLOOR\tmatmul_bf16_tflops\t500.0\tTFLOP/s
FLOOR\tmatmul_fp16_tflops\t400.0\tTFLOP/s
PEER\tprefill\tbf16\t128\tbr\tcontig\tB=2 H=32 S=8192\tFLASH\t5.00000\treps=20
PEER\tprefill\tbf16\t128\tbr\tcontig\tB=2 H=32 S=8192\tCUDNN\t2.00000\treps=20
PEER\tprefill\tfp16\t64\tnone\tcontig\tB=16 H=32 S=1024\tFLASH\t1.00000\treps=20
PEER\tprefill\tfp16\t64\tnone\tcontig\tB=16 H=32 S=1024\tCUDNN\t-\tn/a: refused
PEER\tdecode\tbf16\t128\tbr\tcontig\tB=64 S=4096\tFLASH\t1.00000\tgqa
PEER\tdecode\tbf16\t128\tbr\tpaged16\tB=64 S=4096\tflex\t0.25000\tcompiled
PEER\tdecode\tbf16\t128\tbr\tpaged256\tB=64 S=4096\tflex\t9.00000\tanother row's
"""

# (row index, column): expected value, by hand.
EXPECT = {
    (0, "ours_rate"): 250.0,     # 1e12 FLOPs / 4 ms
    (0, "pct_floor"): 50.0,      # 250 / 500 (bf16 matmul)
    (0, "FLASH_rate"): 200.0,
    (0, "FLASH_ratio"): 1.25,    # 5 ms / 4 ms: ours faster
    (0, "CUDNN_ratio"): 0.5,     # 2 ms / 4 ms: ours slower
    (1, "ours_rate"): 125.0,
    (1, "pct_floor"): 25.0,
    (1, "FLASH_ratio"): 0.625,   # the paged row takes the contiguous SDPA line
    (3, "ours_rate"): 2000.0,    # 1e9 bytes / 0.5 ms
    (3, "pct_floor"): 50.0,      # 2000 / 4000 (read)
    (3, "FLASH_ratio"): 2.0,
    (3, "flex_ratio"): 0.5,      # flex by layout: paged16, not paged256
    (3, "flex_rate"): 4000.0,
    (4, "ours_rate"): 1000.0,    # 1e7 bytes / 0.01 ms
    (4, "pct_floor"): 40.0,      # 1000 / 2500 (copy)
}


def main():
    bad = []
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, text in (("ours.tsv", OURS), ("peers.tsv", PEERS)):
            paths.append(os.path.join(d, name))
            with open(paths[-1], "w") as f:
                f.write(text)
        out_csv = os.path.join(d, "table.csv")
        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = perf_table.main(paths + ["--csv", out_csv])
        md = buf.getvalue()
        with open(out_csv) as f:
            recs = list(csv.DictReader(f))
    if rc != 1:
        bad.append(f"exit status {rc}, want 1 (a row failed its check)")
    if len(recs) != 5:
        bad.append(f"{len(recs)} CSV rows, want 5")
    for (i, col), want in EXPECT.items():
        got = recs[i].get(col, "") if i < len(recs) else ""
        if got == "" or abs(float(got) - want) > 1e-9 * max(1.0, abs(want)):
            bad.append(f"row {i} {col}: {got!r}, want {want}")
    # The host time of our call: carried when the ROW line has it (the decode
    # row), empty when it has not (an older 14-field line).
    if len(recs) > 3 and (recs[3].get("host_ms") != "0.03125" or recs[0].get("host_ms") != ""):
        bad.append(f"host_ms: {recs[3].get('host_ms')!r} / {recs[0].get('host_ms')!r}, want '0.03125' / ''")
    if "| 0.0312 |" not in md:
        bad.append("markdown lacks the decode row's host ms '| 0.0312 |'")
    # The failed row: no time, no rate, no ratio, though its peer has a time.
    if len(recs) > 2:
        for col in ("ours_ms", "ours_rate", "pct_floor", "FLASH_ratio"):
            if recs[2][col] != "":
                bad.append(f"failed row: {col} = {recs[2][col]!r}, want empty")
        if recs[2]["check"] != "FAIL" or recs[2]["FLASH_ms"] != "1":
            bad.append(f"failed row: check {recs[2]['check']!r}, FLASH_ms {recs[2]['FLASH_ms']!r}")
        if recs[2]["CUDNN_note"] != "n/a: refused":
            bad.append(f"failed row: CUDNN note {recs[2]['CUDNN_note']!r}")
    for frag in ("| 1.25 |", "| 50.0 |", "| 2000 |", "FlashInfer: not run", "NVIDIA H200", "torch 2.11.0",
                 "matmul_bf16_tflops 500.0", "### Combine and store"):
        if frag not in md:
            bad.append(f"markdown lacks {frag!r}")
    for b in bad:
        print("FAIL", b)
    print("perf_table merge: %d checks failed" % len(bad))
    if bad:
        print(md)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
