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

--table [--dry-run] [--flex-rows LIST] [--flex-budget S]: the benchmark table's
decode peers (docs/PERF.md) as PEER lines (bench/peer_common.py): every decode
shape of `decode_bench --table` (B in 1, 8, 64, 128; S in 2048, 4096, 32768)
through SDPA FLASH_ATTENTION and CUDNN_ATTENTION on a contiguous cache, and
flex_attention reading a paged cache in place (block 16 and 256, a random
block permutation) through a BlockMask whose KV blocks are the pages, compiled
once per shape (compile time outside the timing), on the rows of --flex-rows
only (default the four B=8 / B=64 S=4096 rows; others print "not run"), and
not past --flex-budget seconds of flex work. --dry-run: on the CPU, shapes
scaled down, MATH under the SDPA names, flex uncompiled: the logic, the
peers' own checks and the lines run without CUDA.
"""
import argparse
import math
import statistics
import sys
import time

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


TABLE_B, TABLE_S, TABLE_BS = (1, 8, 64, 128), (2048, 4096, 32768), (16, 256)
FLEX_DEFAULT = "16:B=8 S=4096,16:B=64 S=4096,256:B=8 S=4096,256:B=64 S=4096"


def _ref_decode(q, k, v, rows):
    """fp32 decode of batch rows `rows`: q [B, Hq, 1, D], k/v [B, Hkv, S, D]."""
    g = HQ // HKV
    kr = k[rows].float().repeat_interleave(g, dim=1)
    vr = v[rows].float().repeat_interleave(g, dim=1)
    return torch.softmax(q[rows].float() @ kr.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ vr


def _flex_paged(B, S, bs, dev, dt, compiled, cuda, l2, reps):
    """flex_attention over a paged cache read in place: the pool [blocks * bs, Hkv, D]
    (our layout, NHD) viewed as [1, Hkv, slots, D], q [B, Hq, 1, D], a BlockMask whose
    full KV blocks of batch b are b's pages (block size = the page size), and a
    mask_mod that says the same per key (slot's page owned by b), for paths that
    evaluate the mask densely. Checked on two batch rows against fp32; (ms, note)."""
    from torch.nn.attention.flex_attention import BlockMask
    from peer_common import copies_for, time_median
    per = S // bs
    nblocks = B * per
    g = torch.Generator(device="cpu").manual_seed(B * 7 + S + bs)
    perm = torch.randperm(nblocks, generator=g).to(dev)
    table = perm.view(B, per).to(torch.int32)
    owner = torch.empty(nblocks, dtype=torch.int64, device=dev)
    owner[perm] = torch.arange(B, device=dev).repeat_interleave(per)
    need = 2.0 * B * S * HKV * D * 2
    copies = copies_for(need, l2, 64)
    q = torch.randn(B, HQ, 1, D, device=dev, dtype=dt)
    pools = [(torch.randn(nblocks * bs, HKV, D, device=dev, dtype=dt),
              torch.randn(nblocks * bs, HKV, D, device=dev, dtype=dt)) for _ in range(copies)]

    def mask_mod(b, h, q_idx, kv_idx):
        return owner[kv_idx // bs] == b

    # The index lists span the whole pool (nblocks columns, b's pages first), as
    # torch's PagedAttention converts them: a dense view of the mask needs every column.
    zeros = torch.zeros(B, 1, 1, dtype=torch.int32, device=dev)
    full_idx = torch.zeros(B, 1, 1, nblocks, dtype=torch.int32, device=dev)
    full_idx[:, 0, 0, :per] = table
    bm = BlockMask.from_kv_blocks(zeros, torch.zeros(B, 1, 1, nblocks, dtype=torch.int32, device=dev),
                                  torch.full((B, 1, 1), per, dtype=torch.int32, device=dev), full_idx,
                                  BLOCK_SIZE=(bs, bs), mask_mod=mask_mod, seq_lengths=(1, nblocks * bs))
    rotate = [(q, kp.permute(1, 0, 2).unsqueeze(0), vp.permute(1, 0, 2).unsqueeze(0)) for kp, vp in pools]

    opts = {}

    def fn(q_, k_, v_):
        return compiled(q_, k_, v_, block_mask=bm, enable_gqa=True, kernel_options=opts or None)
    t0 = time.perf_counter()
    try:
        out = fn(*rotate[0])  # compiles here, outside the timing
    except Exception:  # noqa: BLE001 - a page smaller than flex's default key tile: tiles of one page
        if bs >= 64:
            raise
        opts = {"BLOCK_N": bs}
        out = fn(*rotate[0])
    if cuda:
        torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    # The peer checked: batch rows 0 and B-1 against fp32 over their pages gathered.
    kp, vp = pools[0]
    rows = sorted({0, B - 1})
    slots = (table[rows].to(torch.int64)[:, :, None] * bs + torch.arange(bs, device=dev)).reshape(len(rows), S)
    kc = kp[slots].permute(0, 2, 1, 3)  # [rows, Hkv, S, D]
    vc = vp[slots].permute(0, 2, 1, 3)
    ref = _ref_decode(q[rows], kc, vc, list(range(len(rows))))
    err = (out[rows].float() - ref).abs().max().item()
    if not err < 0.05:
        raise RuntimeError(f"flex output off by {err:.3g}")
    ms, n = time_median(torch, fn, rotate, max_reps=reps, budget_ms=100.0, cuda=cuda)
    tiles = f" BLOCK_N={bs}" if opts else ""
    return ms, f"reps={n} copies={copies} err={err:.2g} compile={compile_s:.1f}s{tiles}"


def table(a):
    from peer_common import copies_for, info_line, peer_line, time_median
    cuda = not a.dry_run
    dev = torch.device("cuda" if cuda else "cpu")
    dt = torch.bfloat16
    if cuda:
        props = torch.cuda.get_device_properties(dev)
        l2 = getattr(props, "L2_cache_size", 50 << 20)
        info_line("device", props.name)
        backends = (("FLASH", SDPBackend.FLASH_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION))
    else:
        l2 = 1 << 20
        info_line("device", "cpu (dry run: shapes scaled down, MATH under the SDPA names, flex uncompiled)")
        backends = (("FLASH", SDPBackend.MATH), ("CUDNN", SDPBackend.MATH))
    info_line("torch", torch.__version__)
    scale = 1 if cuda else 64
    Bs = TABLE_B if cuda else (1, 2)
    for B in Bs:
        for S0 in TABLE_S:
            S = max(256, S0 // scale)
            shape = f"B={B} S={S0}"
            need = 2.0 * B * S * HKV * D * 2
            copies = copies_for(need, l2, 64)
            q = torch.randn(B, HQ, 1, D, device=dev, dtype=dt)
            kvs = [(torch.randn(B, HKV, S, D, device=dev, dtype=dt), torch.randn(B, HKV, S, D, device=dev, dtype=dt))
                   for _ in range(copies)]
            rotate = [(q, k, v) for k, v in kvs]
            rows = sorted({0, B - 1})
            ref = _ref_decode(q, kvs[0][0], kvs[0][1], rows)
            for bname, be in backends:
                print(f"[peer] decode {shape} {bname}", file=sys.stderr, flush=True)
                key = ("decode", "bf16", D, "br", "contig", shape)
                try:
                    def fn(q_, k_, v_):
                        return F.scaled_dot_product_attention(q_, k_, v_, enable_gqa=True)
                    with sdpa_kernel([be]):
                        out = fn(*rotate[0])
                        err = (out[rows].float() - ref).abs().max().item()
                        if not err < 0.05:
                            raise RuntimeError(f"peer output off by {err:.3g}")
                        ms, n = time_median(torch, fn, rotate, max_reps=a.reps, budget_ms=100.0, cuda=cuda)
                    peer_line(key, bname, ms, f"reps={n} copies={copies} err={err:.2g} gqa")
                except Exception as e:  # noqa: BLE001 - a backend that refuses: the row says why
                    peer_line(key, bname, None, "failed: " + (str(e).splitlines() or [type(e).__name__])[0])
                    if cuda:
                        torch.cuda.empty_cache()
            del kvs, rotate, q, ref
            if cuda:
                torch.cuda.empty_cache()
    # flex_attention, paged in place.
    wanted = set(x.strip() for x in a.flex_rows.split(",") if x.strip())
    compiled = None
    spent = 0.0
    for bs in TABLE_BS:
        for B in Bs:
            for S0 in TABLE_S:
                shape = f"B={B} S={S0}"
                key = ("decode", "bf16", D, "br", f"paged{bs}", shape)
                if f"{bs}:{shape}" not in wanted and "all" not in wanted:
                    peer_line(key, "flex", None, "not run (subset: --flex-rows)")
                    continue
                if spent > a.flex_budget:
                    peer_line(key, "flex", None, f"not run (flex budget {a.flex_budget:.0f}s spent)")
                    continue
                print(f"[peer] decode paged{bs} {shape} flex", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                try:
                    if compiled is None:
                        from torch.nn.attention.flex_attention import flex_attention
                        compiled = torch.compile(flex_attention) if cuda and not a.flex_eager else flex_attention
                    S = max(256, S0 // scale)
                    ms, note = _flex_paged(B, S, bs, dev, dt, compiled, cuda, l2, a.reps)
                    peer_line(key, "flex", ms, note)
                except Exception as e:  # noqa: BLE001 - flex refuses this shape: the row says why
                    peer_line(key, "flex", None, "failed: " + (str(e).splitlines() or [type(e).__name__])[0])
                    if cuda:
                        torch.cuda.empty_cache()
                spent += time.perf_counter() - t0
    return 0


def main():
    if "--table" in sys.argv[1:]:
        ap = argparse.ArgumentParser()
        ap.add_argument("--table", action="store_true")
        ap.add_argument("--dry-run", action="store_true")
        ap.add_argument("--reps", type=int, default=30)
        ap.add_argument("--flex-rows", default=FLEX_DEFAULT,
                        help='comma list of "BLOCK:B=.. S=.." rows for flex, or "all"')
        ap.add_argument("--flex-budget", type=float, default=100.0, help="seconds of flex work before it stops")
        ap.add_argument("--flex-eager", action="store_true", help="flex uncompiled (its reference path)")
        return table(ap.parse_args())
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
