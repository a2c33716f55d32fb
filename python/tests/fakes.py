"""Stand-ins for torch.nn.functional, flash_attn and flashinfer, written in
numpy with the real functions' signatures and conventions (SDPA's
[B, H, L, D] and top-left causal, flash-attn's bottom-right causal and
[Hq, total_q] varlen LSE, FlashInfer's plan/run wrappers and base-2 LSE).
Each is installed as a module in sys.modules so that capture's search for
other references to a function finds the aliases a user module made."""

import math
import sys
import types

import numpy as np

from conftest import reference, unpage


def _install(monkeypatch, name, **attrs):
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


# --- torch.nn.functional ---------------------------------------------------------

def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
         enable_gqa=False):
    q, k, v = (np.asarray(x) for x in (query, key, value))
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    lead = q.shape[:-3]
    hq, lq, d = q.shape[-3:]
    hkv, lk = k.shape[-3], k.shape[-2]
    if hkv != hq and not enable_gqa and hkv != 1:
        raise RuntimeError("heads differ without enable_gqa")
    batch = int(np.prod(lead)) if lead else 1
    qb = q.reshape(batch, hq, lq, d)
    kb = k.reshape(batch, hkv, lk, d)
    vb = v.reshape(batch, hkv, lk, v.shape[-1])
    mask = None
    if attn_mask is not None:
        mask = np.broadcast_to(np.asarray(attn_mask), lead + (hq, lq, lk)).reshape(batch, hq, lq, lk)
    out = np.zeros((batch, hq, lq, v.shape[-1]), q.dtype)
    for b in range(batch):
        m = None
        if mask is not None:
            m = mask[b].reshape(hq, lq * lk)
            m = m if m.dtype == bool else m.astype(np.float64)
        o, _ = reference(qb[b].transpose(1, 0, 2), kb[b].transpose(1, 0, 2),
                         vb[b].transpose(1, 0, 2), [0, lq], [0, lk],
                         "TL" if is_causal else "none", scale, m)
        out[b] = o.transpose(1, 0, 2).astype(out.dtype)
    return out.reshape(q.shape[:-1] + v.shape[-1:])


def install_torch(monkeypatch):
    """fake_torch (with __version__) and fake_torch.nn.functional."""
    _install(monkeypatch, "fake_torch", __version__="9.9.9+fake")
    return _install(monkeypatch, "fake_torch.nn.functional", scaled_dot_product_attention=sdpa,
                    relu=lambda x: np.maximum(x, 0))


# --- flash_attn -------------------------------------------------------------------

def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                           dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                           softcap=0.0, alibi_slopes=None, deterministic=False,
                           return_attn_probs=False, block_table=None):
    cu_k = np.asarray(cu_seqlens_k)
    if block_table is not None:
        k, _ = unpage(np.asarray(k), np.asarray(block_table), np.diff(cu_k))
        v, _ = unpage(np.asarray(v), np.asarray(block_table), np.diff(cu_k))
    out, lse = reference(q, k, v, np.asarray(cu_seqlens_q), cu_k, "BR" if causal else "none",
                         softmax_scale, window=(window_size[0], 0 if causal else window_size[1]), softcap=softcap,
                         alibi=alibi_slopes, alibi_abs=True)
    out = out.astype(np.asarray(q).dtype)
    lse = np.where(np.isneginf(lse), np.inf, lse)  # flash-attn's empty row: +inf
    if return_attn_probs:
        return out, lse.T.astype(np.float32).copy(), None
    return out


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                            cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None,
                            block_table=None, softmax_scale=None, causal=False,
                            window_size=(-1, -1), softcap=0.0, rotary_interleaved=True,
                            alibi_slopes=None, num_splits=0, return_softmax_lse=False):
    q = np.asarray(q)
    batch, lq, hq, d = q.shape
    if block_table is None:
        block_table = np.arange(batch)[:, None]
    block_table = np.asarray(block_table)
    block = k_cache.shape[1]
    if cache_seqlens is None:
        lens = np.full(batch, block)
    elif isinstance(cache_seqlens, int):
        lens = np.full(batch, cache_seqlens)
    else:
        lens = np.asarray(cache_seqlens).astype(np.int64)
    if k is not None:  # append in place, as the real function does
        for b in range(batch):
            for t in range(k.shape[1]):
                p = lens[b] + t
                k_cache[block_table[b][p // block], p % block] = k[b, t]
                v_cache[block_table[b][p // block], p % block] = v[b, t]
        lens = lens + k.shape[1]
    kk, cu_k = unpage(k_cache, block_table, lens)
    vv, _ = unpage(v_cache, block_table, lens)
    out, lse = reference(q.reshape(batch * lq, hq, d), kk, vv, np.arange(batch + 1) * lq, cu_k,
                         "BR" if causal else "none", softmax_scale,
                         window=(window_size[0], 0 if causal else window_size[1]), softcap=softcap,
                         alibi=alibi_slopes, alibi_abs=True)
    out = out.astype(q.dtype).reshape(batch, lq, hq, d)
    if return_softmax_lse:
        return out, lse.reshape(batch, lq, hq).transpose(0, 2, 1).astype(np.float32).copy()
    return out


def install_flash_attn(monkeypatch):
    return _install(monkeypatch, "fake_flash_attn", __version__="2.6.3",
                    flash_attn_varlen_func=flash_attn_varlen_func,
                    flash_attn_with_kvcache=flash_attn_with_kvcache)


# --- flashinfer ---------------------------------------------------------------------

def _csr_to_table(indptr, indices):
    pages = np.diff(indptr)
    table = np.full((len(pages), max(int(pages.max()), 1)), -1, np.int64)
    for b in range(len(pages)):
        table[b, :pages[b]] = indices[indptr[b]:indptr[b + 1]]
    return table


def _unpage_planned(paged_kv_cache, p, kv_layout):
    """K and V of a FlashInfer paged cache (a (K, V) tuple or one tensor with
    K and V at index 1) as planned: CSR page lists and last-page lengths."""
    kc, vc = paged_kv_cache if isinstance(paged_kv_cache, tuple) else (
        paged_kv_cache[:, 0], paged_kv_cache[:, 1])
    table = _csr_to_table(p["indptr"], p["indices"])
    pages = np.diff(p["indptr"])
    lens = np.where(pages > 0, (pages - 1) * p["page"] + p["last"], 0)
    kk, cu_k = unpage(kc, table, lens, kv_layout)
    vv, _ = unpage(vc, table, lens, kv_layout)
    return kk, vv, cu_k


class BatchPrefillWithPagedKVCacheWrapper:
    def __init__(self, workspace, kv_layout="NHD"):
        self._kv_layout = kv_layout

    def plan(self, qo_indptr, paged_kv_indptr, paged_kv_indices, paged_kv_last_page_len,
             num_qo_heads, num_kv_heads, head_dim_qk, page_size, head_dim_vo=None,
             custom_mask=None, packed_custom_mask=None, causal=False, pos_encoding_mode="NONE",
             use_fp16_qk_reduction=False, sm_scale=None, window_left=-1, logits_soft_cap=None):
        self._p = dict(qo=np.asarray(qo_indptr).copy(), indptr=np.asarray(paged_kv_indptr).copy(),
                       indices=np.asarray(paged_kv_indices).copy(),
                       last=np.asarray(paged_kv_last_page_len).copy(), page=page_size,
                       causal=causal, scale=sm_scale, mask=custom_mask, window_left=window_left,
                       cap=logits_soft_cap or 0.0)

    begin_forward = plan

    def run(self, q, paged_kv_cache, *args, k_scale=None, v_scale=None, out=None, lse=None,
            return_lse=False):
        p = self._p
        kk, vv, cu_k = _unpage_planned(paged_kv_cache, p, self._kv_layout)
        mask = None if p["mask"] is None else np.asarray(p["mask"]).reshape(1, -1)
        o, l = reference(q, kk, vv, p["qo"], cu_k, "BR" if p["causal"] else "none", p["scale"], mask,
                         window=(p["window_left"], -1), softcap=p["cap"])
        o = o.astype(np.asarray(q).dtype)
        if return_lse:
            return o, (l / math.log(2)).astype(np.float32)
        return o


class BatchDecodeWithPagedKVCacheWrapper:
    def __init__(self, workspace, kv_layout="NHD"):
        self._kv_layout = kv_layout

    def plan(self, indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim,
             page_size, pos_encoding_mode="NONE", window_left=-1, logits_soft_cap=None,
             sm_scale=None):
        self._p = dict(indptr=np.asarray(indptr).copy(), indices=np.asarray(indices).copy(),
                       last=np.asarray(last_page_len).copy(), page=page_size, scale=sm_scale,
                       window_left=window_left, cap=logits_soft_cap or 0.0)

    def run(self, q, paged_kv_cache, *, out=None, lse=None, return_lse=False, k_scale=None,
            v_scale=None):
        p = self._p
        batch = q.shape[0]
        kk, vv, cu_k = _unpage_planned(paged_kv_cache, p, self._kv_layout)
        o, l = reference(q, kk, vv, np.arange(batch + 1), cu_k, "BR", p["scale"], window=(p["window_left"], -1),
                         softcap=p["cap"])
        o = o.astype(np.asarray(q).dtype)
        if return_lse:
            return o, (l / math.log(2)).astype(np.float32)
        return o


def merge_state(v_a, s_a, v_b, s_b):
    s_a, s_b = np.asarray(s_a, np.float64), np.asarray(s_b, np.float64)
    m = np.maximum(s_a, s_b)
    wa, wb = np.exp2(s_a - m), np.exp2(s_b - m)
    v = (wa[..., None] * v_a + wb[..., None] * v_b) / (wa + wb)[..., None]
    return v.astype(np.asarray(v_a).dtype), (m + np.log2(wa + wb)).astype(np.float32)


def merge_states(v, s):
    s = np.asarray(s, np.float64)
    m = s.max(axis=1, keepdims=True)
    w = np.exp2(s - m)
    out = (w[..., None] * v).sum(axis=1) / w.sum(axis=1)[..., None]
    return out.astype(np.asarray(v).dtype), (m[:, 0] + np.log2(w.sum(axis=1))).astype(np.float32)


def install_flashinfer(monkeypatch):
    _install(monkeypatch, "fake_flashinfer.cascade", merge_state=merge_state)
    return _install(monkeypatch, "fake_flashinfer", __version__="0.2.5",
                    BatchPrefillWithPagedKVCacheWrapper=BatchPrefillWithPagedKVCacheWrapper,
                    BatchDecodeWithPagedKVCacheWrapper=BatchDecodeWithPagedKVCacheWrapper,
                    merge_state=merge_state, merge_states=merge_states)
