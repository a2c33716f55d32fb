#!/usr/bin/env python3
"""The prefill benchmark shapes through torch SDPA, as peers for
bench/prefill_bench.cu: backends FLASH_ATTENTION (flash-attn 2 code) and
CUDNN_ATTENTION, bf16, D=128. CUDA events after warm-up, median of --reps
runs, fresh random data per shape. FLOPs = 4*B*H*S*S*D, halved for causal
(with Lq == Lk, SDPA's top-left is_causal equals bottom-right).

Usage: sdpa_peers.py [--reps N] [--ours FILE]
  --ours: output of `prefill_bench --bench`; its TFLOP/s are put beside the
  peers' with ratios (ours / peer).
       sdpa_peers.py --table [--reps N] [--dry-run] [--no-floor]
  the benchmark table's prefill peers (docs/PERF.md): every contiguous row of
  `prefill_bench --table` (bf16/fp16, D 64/128, causal bottom-right/none,
  B=2 H=32 S=8192, B=16 H=32 S=1024, the varlen batch through nested jagged
  tensors) through FLASH_ATTENTION and CUDNN_ATTENTION, as PEER lines, and the
  matmul floors (torch.matmul 8192^3 bf16 / fp16) as FLOOR lines. Same
  rotation and timing rules as ours (bench/peer_common.py). --dry-run: on the
  CPU, shapes scaled down, the MATH backend under both names, so the logic
  and the line format run without CUDA."""
import argparse
import itertools
import math
import statistics
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

SHAPES = [  # name as printed by prefill_bench, B, H, S, causal
    ("causal BR B=2 H=32 S=8192", 2, 32, 8192, True),
    ("non-causal B=4 H=32 S=4096", 4, 32, 4096, False),
]
BACKENDS = [("FLASH", SDPBackend.FLASH_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION)]
D = 128


def time_sdpa(backend, B, H, S, causal, reps):
    g = torch.Generator(device="cuda").manual_seed(B * 1000 + S)
    q, k, v = (torch.rand(B, H, S, D, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1 for _ in range(3))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    with sdpa_kernel([backend]):
        for i in range(reps + 3):
            start.record()
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            end.record()
            end.synchronize()
            if i >= 3:
                times.append(start.elapsed_time(end))
    return statistics.median(times)


# The table's prefill shapes, named as prefill_bench --table names them: (name, H, lengths).
MIXED = [64, 4096, 256, 1024, 128, 2048, 512, 3000, 96, 1536, 768, 200, 1100, 640, 333, 400]
TABLE_SHAPES = [("B=2 H=32 S=8192", 32, [8192] * 2), ("B=16 H=32 S=1024", 32, [1024] * 16),
                ("varlen16 H=32 T=16201", 32, MIXED)]


def _ref_rows(q, k, v, causal, rows):
    """fp32 attention of query rows `rows` of head 0 of one sequence ([H, L, D] tensors),
    causal bottom-right with Lq == Lk."""
    qf, kf, vf = q[0, rows].float(), k[0].float(), v[0].float()
    s = qf @ kf.T / math.sqrt(q.shape[-1])
    if causal:
        pos = torch.arange(k.shape[1], device=q.device)
        s = s.masked_fill(pos[None, :] > torch.tensor(rows, device=q.device)[:, None], float("-inf"))
    return torch.softmax(s, dim=-1) @ vf


def table(a):
    from peer_common import copies_for, info_line, matmul_floor, peer_line, time_median
    cuda = not a.dry_run
    dev = torch.device("cuda" if cuda else "cpu")
    if cuda:
        props = torch.cuda.get_device_properties(dev)
        l2 = getattr(props, "L2_cache_size", 50 << 20)
        info_line("device", props.name)
        backends = BACKENDS
    else:
        l2 = 1 << 20
        info_line("device", "cpu (dry run: shapes scaled down, MATH under both names)")
        backends = [("FLASH", SDPBackend.MATH), ("CUDNN", SDPBackend.MATH)]
    info_line("torch", torch.__version__)
    if not a.no_floor:
        matmul_floor(torch, dev, n=8192 if cuda else 256, cuda=cuda)
    scale = 1 if cuda else 64  # dry run: lengths / 64, at least 2
    for name, H, lens in TABLE_SHAPES:
        lens = [max(2, L // scale) for L in lens]
        H = H if cuda else 2
        fixed = len(set(lens)) == 1
        for dtn, dt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            for D in (64, 128):
                T = sum(lens)
                copy_bytes = 3.0 * T * H * D * 2
                copies = copies_for(copy_bytes, l2, 8)
                g = torch.Generator(device=dev).manual_seed(T * 10 + D)
                data = []
                for _ in range(copies):  # [T, H, D] packed, as ours
                    data.append([torch.rand(T, H, D, device=dev, dtype=dt, generator=g) * 2 - 1 for _ in range(3)])
                if fixed:  # [B, H, S, D] views of the packed rows
                    views = [[x.view(len(lens), lens[0], H, D).transpose(1, 2) for x in c] for c in data]
                else:
                    offs = torch.tensor([0] + list(itertools.accumulate(lens)), device=dev, dtype=torch.int64)
                    views = []
                    for c in data:
                        try:
                            views.append([torch.nested.nested_tensor_from_jagged(x, offs).transpose(1, 2) for x in c])
                        except Exception as e:  # noqa: BLE001 - no nested tensors: the row says so
                            views = str(e).splitlines()[0]
                            break
                for causal in (True, False):
                    key = ("prefill", dtn, D, "br" if causal else "none", "contig", name)
                    for bname, be in backends:
                        print(f"[peer] prefill {dtn} D={D} causal={key[3]} {name} {bname}", file=sys.stderr,
                              flush=True)
                        if isinstance(views, str):
                            peer_line(key, bname, None, "n/a: nested tensors: " + views)
                            continue
                        try:
                            def fn(q_, k_, v_):
                                return F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal)
                            with sdpa_kernel([be]):
                                out = fn(*views[0])
                                # The peer checked too: rows 0 and L-1 of head 0, sequence 0, in fp32.
                                L0 = lens[0]
                                o0 = out[0] if fixed else out.unbind()[0]
                                q0, k0, v0 = ((x[0] if fixed else x.unbind()[0]) for x in views[0])
                                ref = _ref_rows(q0, k0, v0, causal, [0, L0 - 1])
                                err = (o0[0, [0, L0 - 1]].float() - ref).abs().max().item()
                                if not err < 0.02:
                                    raise RuntimeError(f"peer output off by {err:.3g}")
                                ms, reps = time_median(torch, fn, views, max_reps=a.reps, cuda=cuda)
                            peer_line(key, bname, ms, f"reps={reps} copies={copies} err={err:.2g}")
                        except Exception as e:  # noqa: BLE001 - a backend that refuses: n/a, with why
                            peer_line(key, bname, None, "n/a: " + (str(e).splitlines() or [type(e).__name__])[0])
                            if cuda:
                                torch.cuda.empty_cache()
                del data, views
                if cuda:
                    torch.cuda.empty_cache()
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ours", default=None)
    ap.add_argument("--table", action="store_true", help="the benchmark table's prefill peers (PEER/FLOOR lines)")
    ap.add_argument("--dry-run", action="store_true", help="with --table: on the CPU, small shapes, MATH backend")
    ap.add_argument("--no-floor", action="store_true", help="with --table: skip the matmul floors")
    a = ap.parse_args()
    if a.table:
        return table(a)
    ours = {}
    if a.ours:
        for line in open(a.ours):
            for name, *_ in SHAPES:
                if line.startswith(name + " "):
                    ours[name] = float(line.split()[-1])
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"{'shape (bf16, D=128)':32} {'ours':>8} {'FLASH':>8} {'CUDNN':>8} {'ours/FLASH':>11} {'ours/CUDNN':>11}")
    for name, B, H, S, causal in SHAPES:
        flops = 4.0 * B * H * S * S * D * (0.5 if causal else 1.0)
        tf = {}
        for bname, be in BACKENDS:
            try:
                tf[bname] = flops / (time_sdpa(be, B, H, S, causal, a.reps) * 1e-3) / 1e12
            except RuntimeError as e:  # backend not available for this shape / build
                print(f"  {bname}: {str(e).splitlines()[0]}")
                tf[bname] = float("nan")
        mine = ours.get(name, float("nan"))
        print(f"{name:32} {mine:8.1f} {tf['FLASH']:8.1f} {tf['CUDNN']:8.1f} "
              f"{mine / tf['FLASH']:11.2f} {mine / tf['CUDNN']:11.2f}")


if __name__ == "__main__":
    sys.exit(main())
