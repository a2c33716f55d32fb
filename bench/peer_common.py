"""What the peer scripts of the benchmark table share (docs/PERF.md, "The
benchmark table"): the rotation rule, the timing rule and the line format
bench/perf_table.py reads. The rules are those of bench/bench_table.h, so our
rows and the peers' are measured alike.

Lines (tab separated):
  PEER op dtype D causal layout shape peer ms note   ms "-" when not run or failed
  FLOOR name value unit
  INFO key value
"""
import math
import statistics
import time


def copies_for(bytes_per_copy, l2_bytes, max_copies=64):
    """Copies of a configuration's inputs, cycled per call: data of 4x L2 and
    more is its own rotation (1), below that copies until they pass 4x L2
    (at least 2, at most max_copies)."""
    floor_bytes = 4.0 * l2_bytes
    if bytes_per_copy >= floor_bytes:
        return 1
    return min(max_copies, max(2, math.ceil(floor_bytes / max(bytes_per_copy, 1.0))))


SPIN_CYCLES = 2_000_000  # about 1 ms at the H200's 1.98 GHz


def time_median(torch, fn, rotate, warmup=3, min_reps=5, max_reps=30, budget_ms=150.0, cuda=True):
    """fn(*rotate[i % len(rotate)]) timed: `warmup` calls, then reps calls
    (budget_ms over the last warm-up's time, within [min_reps, max_reps]),
    each between two CUDA events (perf_counter on the CPU); the median in ms
    and the reps."""
    times, reps, i = [], max_reps, 0
    while i < warmup + reps:
        args = rotate[i % len(rotate)]
        if cuda:
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            # A 1 ms spin first, as bench_table.h's tb_spin: the Python
            # dispatch then runs while the GPU is busy, and the events time the
            # GPU's work alone (ours are timed the same way).
            torch.cuda._sleep(SPIN_CYCLES)
            e0.record()
            fn(*args)
            e1.record()
            e1.synchronize()
            t = e0.elapsed_time(e1)
        else:
            t0 = time.perf_counter()
            fn(*args)
            t = (time.perf_counter() - t0) * 1e3
        if i < warmup:
            if i == warmup - 1 and t > 0:
                reps = min(max_reps, max(min_reps, int(budget_ms / t)))
        else:
            times.append(t)
        i += 1
    return statistics.median(times), len(times)


def peer_line(key, peer, ms, note=""):
    """key: (op, dtype, D, causal, layout, shape) as our ROW lines name it."""
    ms_s = "-" if ms is None else "%.5f" % ms
    note = " ".join(str(note).split())[:200] or "-"
    print("PEER\t" + "\t".join(str(k) for k in key) + "\t%s\t%s\t%s" % (peer, ms_s, note), flush=True)


def floor_line(name, value, unit):
    print("FLOOR\t%s\t%.1f\t%s" % (name, value, unit), flush=True)


def info_line(key, value):
    print("INFO\t%s\t%s" % (key, " ".join(str(value).split())), flush=True)


def matmul_floor(torch, dev, n=8192, cuda=True):
    """The matrix rate floors: torch.matmul n^3 in bf16 and fp16, the best of
    10 after 3 warm-ups, in TFLOP/s (2 n^3 FLOPs a call)."""
    for name, dt in (("matmul_bf16_tflops", torch.bfloat16), ("matmul_fp16_tflops", torch.float16)):
        a = torch.randn(n, n, device=dev, dtype=dt)
        b = torch.randn(n, n, device=dev, dtype=dt)
        best = None
        for i in range(13):
            ms, _ = time_median(torch, torch.matmul, [(a, b)], warmup=0, min_reps=1, max_reps=1, cuda=cuda)
            if i >= 3:
                best = ms if best is None else min(best, ms)
        floor_line(name, 2.0 * n ** 3 / (best * 1e-3) / 1e12, "TFLOP/s")
        del a, b
