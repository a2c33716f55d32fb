"""A check of attncheck.capture with real torch on a CUDA device (bf16/fp16):
direct SDPA calls, the forward pass of a tiny randomly initialised
transformers Llama (left padding, so some query rows have no key), and a
torch stand-in of flash_attn_with_kvcache whose paged pool lives on the
device (the block compaction runs there). Every dump is re-read and its
output compared with a float64 reference computed from the dumped inputs in
the dump's own conventions; rows with no allowed key are reported apart.

Not collected by pytest (it needs a GPU, torch and transformers):
    python3 python/tests/gpu_check.py      # exit 0: every check passed"""
import math, os, sys, tempfile, types, traceback
import numpy as np
import torch
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))
sys.path.insert(0, HERE)
import attncheck
from conftest import reference, unpage

dev = "cuda"
F = torch.nn.functional
ok = True

def check_dump(path):
    meta, t = attncheck.load(path, bf16="float32")
    t = {k: (v.astype(np.float64) if v.dtype in (np.float16, np.float32) else v) for k, v in t.items()}
    if "k_cache" in t:
        k, cu_k = unpage(t["k_cache"], t["block_table"], t["seqlens_k"], meta["kv_layout"])
        v, _ = unpage(t["v_cache"], t["block_table"], t["seqlens_k"], meta["kv_layout"])
    else:
        k, v, cu_k = t["k"], t["v"], t.get("cu_seqlens_k", np.array([0, t["k"].shape[0]]))
    cu_q = t.get("cu_seqlens_q", np.array([0, t["q"].shape[0]]))
    scale = None if meta["scale"] == "default" else meta["scale"]
    mask = t.get("mask")
    if mask is not None and meta["mask"] == "bool":
        mask = mask.astype(bool)
    out, lse = reference(t["q"], k, v, cu_q, cu_k, meta["causal"], scale, mask)
    diff = np.abs(t["out"] - out)
    empty = np.isneginf(lse)  # [Tq, Hq]: rows with no allowed key
    if empty.any():
        held = t["out"][empty]
        print("   note: %d empty (row, head) pairs in %s: max|out| there %.3g; max|out-ref| elsewhere %.3g"
              % (int(empty.sum()), os.path.basename(path), float(np.nanmax(np.abs(held))),
                 float(np.nanmax(diff[~empty])) if (~empty).any() else 0.0))
        diff = np.where(empty[..., None], 0.0, diff)
    bad = int(np.sum(~np.isfinite(t["out"]).all(axis=-1)))
    if bad:
        print("   note: %d output rows not finite (empty rows?) in %s" % (bad, os.path.basename(path)))
    err = float(np.nanmax(diff)) if out.size else 0.0
    lse_err = None
    if "lse" in t:
        got = t["lse"].T if meta["lse_layout"] == "HT" else t["lse"]
        want = lse / math.log(2) if meta["lse_base"] == "2" else lse
        lse_err = float(np.max(np.abs(got - want)))
    return meta, err, lse_err

def report(name, cond, detail=""):
    global ok
    ok &= bool(cond)
    print("%s %s %s" % ("PASS" if cond else "FAIL", name, detail), flush=True)

def run(name, fn):
    try:
        fn()
    except Exception:
        report(name, False, traceback.format_exc())

# 1. SDPA directly, bf16 and fp16, GQA, masks, scales
def sdpa_calls():
    d = tempfile.mkdtemp()
    g = torch.Generator(device=dev).manual_seed(0)
    r = lambda *s, dt=torch.bfloat16: torch.randn(*s, device=dev, dtype=dt, generator=g)
    original = F.scaled_dot_product_attention
    with attncheck.capture(d, flash_attn=False, flashinfer=False) as cap:
        F.scaled_dot_product_attention(r(2, 8, 33, 64), r(2, 2, 47, 64), r(2, 2, 47, 64), is_causal=True, enable_gqa=True)
        F.scaled_dot_product_attention(r(2, 8, 5, 128, dt=torch.float16), r(2, 8, 9, 128, dt=torch.float16), r(2, 8, 9, 128, dt=torch.float16), scale=1.0)
        pad = torch.ones(2, 1, 1, 9, dtype=torch.bool, device=dev); pad[1, ..., 6:] = False
        F.scaled_dot_product_attention(r(2, 4, 5, 64), r(2, 4, 9, 64), r(2, 4, 9, 64), attn_mask=pad)
        bias = r(2, 4, 5, 9); bias[0, 1, 3] = float("-inf")
        F.scaled_dot_product_attention(r(2, 4, 5, 64), r(2, 4, 9, 64), r(2, 4, 9, 64), attn_mask=bias)
        F.scaled_dot_product_attention(r(1, 2, 3, 64, dt=torch.float32), r(1, 2, 3, 64, dt=torch.float32), r(1, 2, 3, 64, dt=torch.float32))
    report("sdpa restored", F.scaled_dot_product_attention is original)
    print(cap.summary())
    report("sdpa 4 recorded, fp32 skipped", len(cap.records) == 4 and len(cap.skipped) == 1)
    for rec in cap.records:
        meta, err, _ = check_dump(rec["file"])
        report("sdpa dump " + os.path.basename(rec["file"]), err < 2e-2, "max|out-ref|=%.3g causal=%s scale=%s mask=%s" % (err, meta["causal"], meta["scale"], meta["mask"]))

# 2. A tiny transformers model
def hf_model():
    import transformers
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
                                   num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
                                   attn_implementation="sdpa")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).to(dev, torch.bfloat16).eval()
    ids = torch.randint(0, 128, (2, 40), device=dev)
    mask = torch.ones_like(ids); mask[1, :7] = 0   # left padding in row 1
    d = tempfile.mkdtemp()
    with torch.no_grad():
        ref_logits = model(ids, attention_mask=mask).logits
        with attncheck.capture(d, flash_attn=False, flashinfer=False) as cap:
            logits = model(ids, attention_mask=mask).logits
    print(cap.summary())
    report("hf logits unchanged under capture", torch.equal(ref_logits, logits))
    report("hf one call per layer", len(cap.records) == 3, "transformers %s" % transformers.__version__)
    for rec in cap.records:
        meta, err, _ = check_dump(rec["file"])
        report("hf dump " + os.path.basename(rec["file"]), err < 3e-2, "max|out-ref|=%.3g causal=%s mask=%s shapes=%s" % (err, meta["causal"], meta["mask"], rec["shapes"]))

# 3. torch-backed stand-in of flash_attn_with_kvcache: a paged cache on the GPU
def paged_torch():
    def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                                cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None, block_table=None,
                                softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                                rotary_interleaved=True, alibi_slopes=None, num_splits=0, return_softmax_lse=False):
        B, Lq, H, D = q.shape
        bs = k_cache.shape[1]
        outs, lses = [], []
        for b in range(B):
            n = int(cache_seqlens[b])
            blocks = block_table[b, : (n + bs - 1) // bs].long()
            kk = k_cache[blocks].reshape(-1, *k_cache.shape[2:])[:n]
            vv = v_cache[blocks].reshape(-1, *v_cache.shape[2:])[:n]
            rep = H // kk.shape[1]
            kk = kk.repeat_interleave(rep, 1).float(); vv = vv.repeat_interleave(rep, 1).float()
            s = torch.einsum("qhd,khd->hqk", q[b].float(), kk) * (softmax_scale or D ** -0.5)
            i = torch.arange(Lq, device=q.device)[:, None]; j = torch.arange(n, device=q.device)[None, :]
            if causal:
                s = s.masked_fill(~(j <= i + (n - Lq)), float("-inf"))
            lse = torch.logsumexp(s, -1)
            outs.append(torch.einsum("hqk,khd->qhd", torch.softmax(s, -1), vv).to(q.dtype))
            lses.append(lse)
        out = torch.stack(outs)
        return (out, torch.stack(lses)) if return_softmax_lse else out
    fake = types.ModuleType("fake_flash_attn_torch"); fake.__version__ = "0-torch-fake"
    fake.flash_attn_with_kvcache = flash_attn_with_kvcache
    sys.modules["fake_flash_attn_torch"] = fake
    g = torch.Generator(device=dev).manual_seed(1)
    kc = torch.randn(500, 16, 2, 128, device=dev, dtype=torch.bfloat16, generator=g)
    vc = torch.randn(500, 16, 2, 128, device=dev, dtype=torch.bfloat16, generator=g)
    table = torch.randint(0, 500, (3, 8), device=dev, dtype=torch.int32, generator=g)
    lens = torch.tensor([100, 17, 128], device=dev, dtype=torch.int32)
    q = torch.randn(3, 2, 8, 128, device=dev, dtype=torch.bfloat16, generator=g)
    d = tempfile.mkdtemp()
    with attncheck.capture(d, sdpa=False, flash_attn=fake, flashinfer=False) as cap:
        fake.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, block_table=table, causal=True, return_softmax_lse=True, num_splits=4)
    print(cap.summary())
    rec = cap.records[0]
    meta, err, lse_err = check_dump(rec["file"])
    report("paged torch dump", err < 2e-2 and lse_err < 1e-3, "max|out-ref|=%.3g max|lse-ref|=%.3g k_cache=%s op=%s" % (err, lse_err, rec["shapes"]["k_cache"], rec["op"]))
    report("pool compacted", rec["shapes"]["k_cache"][0] <= 7 + 2 + 8)

run("sdpa", sdpa_calls)
run("hf", hf_model)
run("paged", paged_torch)
print("ALL OK" if ok else "SOMETHING FAILED")
sys.exit(0 if ok else 1)
