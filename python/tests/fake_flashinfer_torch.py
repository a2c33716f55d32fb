"""A stand-in for FlashInfer's batch wrappers and merge_states, in torch on the
CPU, written from FlashInfer's documented semantics (not from attncheck's case
model): CSR page lists with last-page lengths over an NHD paged cache, ragged
indptrs, a bottom-right causal flag, custom_mask as each request's [qo, kv]
block flattened and concatenated, LSE in base 2. It lets test_flashinfer.py run
the flashinfer adapter's plumbing through attncheck without a GPU; the real
library is judged on the GPU host (docs/BRIDGE.md)."""

import math

import torch


def _attend(q, k, v, allowed, scale, soft_cap=None):
    """One request in float64: q [Lq, Hq, D], k/v [Lk, Hkv, D], allowed [Lq, Lk];
    logits_soft_cap c: the scaled logits become c * tanh(s / c)."""
    lq, hq, d = q.shape
    hkv = k.shape[1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    o = torch.zeros(lq, hq, d, dtype=torch.float64)
    lse = torch.full((lq, hq), -math.inf, dtype=torch.float64)
    if lq == 0 or k.shape[0] == 0:
        return o, lse
    kk = k.double().repeat_interleave(hq // hkv, dim=1)
    vv = v.double().repeat_interleave(hq // hkv, dim=1)
    s = torch.einsum("qhd,khd->hqk", q.double(), kk) * scale
    if soft_cap:
        s = soft_cap * torch.tanh(s / soft_cap)
    s = s.masked_fill(~allowed[None], -math.inf)
    m = s.amax(dim=-1, keepdim=True)
    live = torch.isfinite(m)
    p = torch.where(live, torch.exp(s - torch.where(live, m, 0.0)), 0.0)
    tot = p.sum(-1, keepdim=True)
    o = torch.einsum("hqk,khd->qhd", p / torch.where(live, tot, 1.0), vv)
    lse = torch.where(live, m + torch.log(torch.where(live, tot, 1.0)), -math.inf)[..., 0].transpose(0, 1)
    return o, lse


def _requests(q, qo, kv_of, causal, mask, scale, window_left=-1, logits_soft_cap=None):
    """window_left >= 0: keys j >= i + (Lk - Lq) - window_left (aligned like the causal flag)."""
    outs, lses, off = [], [], 0
    for b in range(len(qo) - 1):
        qb = q[int(qo[b]):int(qo[b + 1])]
        kb, vb = kv_of(b)
        lq, lk = qb.shape[0], kb.shape[0]
        allowed = torch.ones(lq, lk, dtype=torch.bool)
        if causal:  # bottom-right
            allowed = torch.arange(lk)[None, :] <= torch.arange(lq)[:, None] + (lk - lq)
        if mask is not None:
            allowed = allowed & mask[off:off + lq * lk].reshape(lq, lk).bool()
            off += lq * lk
        if window_left >= 0:
            allowed = allowed & (torch.arange(lk)[None, :] >= torch.arange(lq)[:, None] + (lk - lq) - window_left)
        o, lse = _attend(qb, kb, vb, allowed, scale, logits_soft_cap)
        outs.append(o)
        lses.append(lse)
    o = torch.cat(outs).to(q.dtype)
    return o, (torch.cat(lses) / math.log(2)).float()


def _paged(cache, indptr, indices, last, page):
    kc, vc = cache

    def kv_of(b):
        pages = indices[int(indptr[b]):int(indptr[b + 1])].long()
        n = len(pages)
        if n == 0:
            return kc[:0, 0], vc[:0, 0]
        length = (n - 1) * page + int(last[b])
        return (kc[pages].reshape(-1, *kc.shape[2:])[:length], vc[pages].reshape(-1, *vc.shape[2:])[:length])
    return kv_of


class BatchPrefillWithPagedKVCacheWrapper:
    def __init__(self, workspace, kv_layout="NHD"):
        assert kv_layout == "NHD"

    def plan(self, qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len, num_qo_heads,
             num_kv_heads, head_dim_qk, page_size, custom_mask=None, causal=False, sm_scale=None,
             q_data_type=None, kv_data_type=None, window_left=-1, logits_soft_cap=None, **kw):
        self.p = (qo_indptr.clone(), paged_kv_indptr.clone(), paged_kv_indices.clone(),
                  paged_kv_last_page_len.clone(), page_size, custom_mask, causal, sm_scale)
        self.feat = dict(window_left=window_left, logits_soft_cap=logits_soft_cap)

    def run(self, q, paged_kv_cache, return_lse=False):
        qo, indptr, indices, last, page, mask, causal, scale = self.p
        o, lse = _requests(q, qo, _paged(paged_kv_cache, indptr, indices, last, page), causal, mask, scale,
                           **self.feat)
        return (o, lse) if return_lse else o


class BatchPrefillWithRaggedKVCacheWrapper:
    def __init__(self, workspace, kv_layout="NHD"):
        assert kv_layout == "NHD"

    def plan(self, qo_indptr, kv_indptr, num_qo_heads, num_kv_heads, head_dim_qk, custom_mask=None,
             causal=False, sm_scale=None, q_data_type=None, kv_data_type=None, window_left=-1,
             logits_soft_cap=None, **kw):
        self.p = (qo_indptr.clone(), kv_indptr.clone(), custom_mask, causal, sm_scale)
        self.feat = dict(window_left=window_left, logits_soft_cap=logits_soft_cap)

    def run(self, q, k, v, return_lse=False):
        qo, kv, mask, causal, scale = self.p
        o, lse = _requests(q, qo, lambda b: (k[int(kv[b]):int(kv[b + 1])], v[int(kv[b]):int(kv[b + 1])]),
                           causal, mask, scale, **self.feat)
        return (o, lse) if return_lse else o


class BatchDecodeWithPagedKVCacheWrapper:
    def __init__(self, workspace, kv_layout="NHD"):
        assert kv_layout == "NHD"

    def plan(self, indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size,
             sm_scale=None, q_data_type=None, kv_data_type=None, window_left=-1, logits_soft_cap=None, **kw):
        self.p = (indptr.clone(), indices.clone(), last_page_len.clone(), page_size, sm_scale)
        self.feat = dict(window_left=window_left, logits_soft_cap=logits_soft_cap)

    def run(self, q, paged_kv_cache, return_lse=False):
        indptr, indices, last, page, scale = self.p
        qo = torch.arange(q.shape[0] + 1)
        o, lse = _requests(q, qo, _paged(paged_kv_cache, indptr, indices, last, page), False, None, scale,
                           **self.feat)
        return (o, lse) if return_lse else o


def merge_states(v, s):
    """v [rows, S, H, D], s [rows, S, H] base 2 -> (v [rows, H, D], s [rows, H])."""
    s64 = s.double()
    m = s64.amax(dim=1, keepdim=True)
    live = torch.isfinite(m)
    w = torch.where(live, torch.exp2(s64 - torch.where(live, m, 0.0)), 0.0)
    tot = w.sum(dim=1)
    o = (w[..., None] * torch.nan_to_num(v.double()) * (w[..., None] > 0)).sum(dim=1)
    o = o / torch.where(tot > 0, tot, 1.0)[..., None]
    out_s = torch.where(tot > 0, m[:, 0] + torch.log2(torch.where(tot > 0, tot, 1.0)), -math.inf)
    return o.to(v.dtype), out_s.float()
