"""Minimal reproductions of what the bridge found in flex_attention on the H200
(docs/BRIDGE.md, "Findings"). Plain torch, no attncheck.

1. A paged pool read in place (the pool is the key axis, a block mask lets each
   query see only its sequence's slots, as paged flex decoding does): a NaN or
   Inf in a slot the mask excludes, but inside a 128-key tile the kernel still
   visits, reaches the output (0 * NaN). Unused cache slots may hold anything
   (docs/CONTRACT.md); the same keys gathered give a finite answer.
2. enable_gqa under torch.compile(dynamic=True): whether a second shape
   (the dynamic recompile) still finds a kernel.

    python3 python/tests/gpu_repro_flex.py
"""
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

torch.manual_seed(0)
dev, dt = "cuda", torch.bfloat16
fa = torch.compile(flex_attention)

# 1. NaN / Inf in slots the mask excludes.
H, D, used, pool = 2, 64, 100, 256
q = torch.randn(1, H, 1, D, device=dev, dtype=dt)
k = torch.randn(1, H, pool, D, device=dev, dtype=dt)
v = torch.randn(1, H, pool, D, device=dev, dtype=dt)
bm = create_block_mask(lambda b, h, qi, ki: ki < used, 1, None, 1, pool, device=dev)
ref = fa(q, k[:, :, :used].contiguous(), v[:, :, :used].contiguous()).double()
for what, bad in (("NaN", float("nan")), ("Inf", float("inf"))):
    for side in ("v", "k"):
        kk, vv = k.clone(), v.clone()
        (vv if side == "v" else kk)[:, :, used + 3] = bad  # one excluded slot, in the tile of the used ones
        o = fa(q, kk, vv, block_mask=bm).double()
        print("flex, pool in place, %s in an excluded %s slot: nan=%d, max|o - gathered|=%.3g" % (
            what, side.upper(), int(o.isnan().sum()), float((o - ref).abs().nan_to_num(1e9).max())))

# 2. enable_gqa with dynamic shapes: two lengths, the second compiles dynamically.
fd = torch.compile(flex_attention, dynamic=True)
causal = lambda b, h, qi, ki: qi >= ki  # noqa: E731
for L, masked in ((37, False), (70, False), (113, False), (37, True), (70, True)):
    qg = torch.randn(1, 8, L, D, device=dev, dtype=dt)
    kg = torch.randn(1, 2, L, D, device=dev, dtype=dt)
    vg = torch.randn(1, 2, L, D, device=dev, dtype=dt)
    try:
        bmg = create_block_mask(causal, 1, None, L, L, device=dev) if masked else None
        o = fd(qg, kg, vg, block_mask=bmg, enable_gqa=True)
        want = flex_attention(qg, kg, vg, block_mask=bmg, enable_gqa=True)  # eager reference
        print("flex enable_gqa dynamic, L=%d%s: ran, max|o - eager|=%.3g" % (
            L, " causal block mask" if masked else "", float((o - want).abs().max())))
    except Exception as e:
        print("flex enable_gqa dynamic, L=%d%s: %s: %s" % (L, " causal block mask" if masked else "",
                                                         type(e).__name__, str(e).splitlines()[0][:160]))
print("torch", torch.__version__, torch.cuda.get_device_name())
