#!/usr/bin/env python3
"""Decode peers for bench/decode_bench.cu: torch SDPA with the FLASH_ATTENTION
and CUDNN_ATTENTION backends on a contiguous cache, Hq=32 Hkv=8 D=128 bf16,
q [B, 32, 1, 128], k/v [B, 8, S, 128], for B=1 S=32768 and B=64 S=4096.

GB/s counts the K and V bytes a decode must read, 2 * B * S * Hkv * D * 2,
whatever the backend actually moves (with repeated heads it moves 4x that).
GQA is tried first with enable_gqa=True; a backend that refuses it gets K/V
repeated to 32 heads (repeat_interleave, outside the timed region); the mode
used is printed. Timing: CUDA events, 5 warm-up calls, median of 30, K/V
copies rotated so that one call's data is not in L2 from the previous one.
Output lines: "PEER <backend> B=<B> S=<S> gbps=<x> mode=<gqa|repeat|failed:...>".
"""
import math
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HQ, HKV, D = 32, 8, 128
SHAPES = [(1, 32768), (64, 4096)]


def time_call(fn, rotate, warmup=5, iters=30):
    times = []
    for it in range(warmup + iters):
        args = rotate[it % len(rotate)]
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        fn(*args)
        e1.record()
        e1.synchronize()
        if it >= warmup:
            times.append(e0.elapsed_time(e1))
    return statistics.median(times)


def main():
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    print(f"# device {props.name}, torch {torch.__version__}, L2 {l2 >> 20} MB", flush=True)
    for B, S in SHAPES:
        need = 2 * B * S * HKV * D * 2
        copies = max(1, math.ceil(3 * l2 / need))
        q = torch.randn(B, HQ, 1, D, device=dev, dtype=torch.bfloat16)
        kvs = [(torch.randn(B, HKV, S, D, device=dev, dtype=torch.bfloat16),
                torch.randn(B, HKV, S, D, device=dev, dtype=torch.bfloat16)) for _ in range(copies)]
        for name, backend in (("FLASH_ATTENTION", SDPBackend.FLASH_ATTENTION),
                              ("CUDNN_ATTENTION", SDPBackend.CUDNN_ATTENTION)):
            mode, gbps = None, 0.0
            for try_mode in ("gqa", "repeat"):
                try:
                    if try_mode == "gqa":
                        rotate = [(q, k, v) for k, v in kvs]

                        def fn(q_, k_, v_):
                            return F.scaled_dot_product_attention(q_, k_, v_, enable_gqa=True)
                    else:
                        rotate = [(q, k.repeat_interleave(HQ // HKV, dim=1), v.repeat_interleave(HQ // HKV, dim=1))
                                  for k, v in kvs]

                        def fn(q_, k_, v_):
                            return F.scaled_dot_product_attention(q_, k_, v_)
                    with sdpa_kernel([backend]):
                        # Correctness of the peer itself, against the math path in fp32.
                        out = fn(*rotate[0])
                        kr = kvs[0][0].float().repeat_interleave(HQ // HKV, dim=1)
                        vr = kvs[0][1].float().repeat_interleave(HQ // HKV, dim=1)
                        ref = torch.softmax(q.float() @ kr.transpose(-1, -2) / math.sqrt(D), dim=-1) @ vr
                        err = (out.float() - ref).abs().max().item()
                        if not err < 0.05:
                            raise RuntimeError(f"peer output off by {err}")
                        ms = time_call(fn, rotate)
                    mode, gbps = try_mode, need / (ms * 1e-3) / 1e9
                    del rotate
                    break
                except Exception as e:  # noqa: BLE001 - report and fall back
                    mode = "failed:" + type(e).__name__
                    print(f"# {name} B={B} S={S} mode={try_mode}: {str(e).splitlines()[0][:160]}", flush=True)
                    torch.cuda.empty_cache()
            print(f"PEER {name} B={B} S={S} gbps={gbps:.1f} mode={mode}", flush=True)
        del kvs, q
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
