"""Minimal reproductions of what the bridge's walk found in PyTorch SDPA on the
H200 (docs/BRIDGE.md, "Findings"). Plain torch, no attncheck: each prints the
backend's output next to the MATH backend's in float64.

    python3 python/tests/gpu_repro_sdpa.py
"""
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

torch.manual_seed(0)
dev, dt = "cuda", torch.bfloat16
B, H, L, S, D = 1, 2, 5, 37, 64
q = torch.randn(B, H, L, D, device=dev, dtype=dt)
k = torch.randn(B, H, S, D, device=dev, dtype=dt)
v = torch.randn(B, H, S, D, device=dev, dtype=dt)

def run(backend, **kw):
    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(q, k, v, **kw)

# 1. scale=0.0 is a legal scale: every logit 0, the output the mean of V.
want = v.double().mean(dim=2, keepdim=True).expand(B, H, L, D)
for be in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
    try:
        o = run(be, scale=0.0).double()
        print("scale=0.0 %-20s nan=%d max|o - mean(V)|=%.3g" % (be.name, int(o.isnan().sum()), float((o - want).abs().nan_to_num(1e9).max())))
    except Exception as e:
        print("scale=0.0 %-20s refused: %s" % (be.name, str(e).splitlines()[0][:100]))

# 2. A query row whose boolean mask row is all False (no allowed key).
mask = torch.ones(B, H, L, S, device=dev, dtype=torch.bool)
mask[:, :, 1, :] = False
for be in (SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
    try:
        o = run(be, attn_mask=mask).float()
        r = o[:, :, 1, :]
        print("empty row %-20s row 1 holds: nan=%d zeros=%d max|x|=%.3g (other rows finite: %s)" % (
            be.name, int(r.isnan().sum()), int((r == 0).sum()), float(r.abs().nan_to_num(0).max()),
            bool(torch.isfinite(o[:, :, [0, 2, 3, 4], :]).all())))
    except Exception as e:
        print("empty row %-20s refused: %s" % (be.name, str(e).splitlines()[0][:100]))
print("torch", torch.__version__, torch.cuda.get_device_name())
