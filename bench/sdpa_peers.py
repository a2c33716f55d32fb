#!/usr/bin/env python3
"""The prefill benchmark shapes through torch SDPA, as peers for
bench/prefill_bench.cu: backends FLASH_ATTENTION (flash-attn 2 code) and
CUDNN_ATTENTION, bf16, D=128. CUDA events after warm-up, median of --reps
runs, fresh random data per shape. FLOPs = 4*B*H*S*S*D, halved for causal
(with Lq == Lk, SDPA's top-left is_causal equals bottom-right).

Usage: sdpa_peers.py [--reps N] [--ours FILE]
  --ours: output of `prefill_bench --bench`; its TFLOP/s are put beside the
  peers' with ratios (ours / peer)."""
import argparse
import statistics

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ours", default=None)
    a = ap.parse_args()
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
    main()
