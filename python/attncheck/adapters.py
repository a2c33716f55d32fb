"""Adapters for attncheck's Python bridge (`--kernel py:attncheck.adapters:NAME`).

numpy_ref        the contract in float64 numpy, all four families (CI's end-to-end check)
sdpa_flash, sdpa_efficient, sdpa_cudnn, sdpa_math
                 torch.nn.functional.scaled_dot_product_attention on one backend each:
                 prefill (varlen as one call per sequence) and decode (the paged cache
                 gathered per sequence)
flex             torch.nn.attention.flex_attention, compiled: prefill (mask_mod over the
                 packed sequences) and decode (paged, through a block mask over the table)
sdpa_misuse_scale1, sdpa_misuse_topleft, sdpa_misuse_gqa_mod, flex_misuse_lse_base2
                 classic wrapper bugs on real kernels, for the diagnosis demo: they must fail

Importing this module imports numpy only; torch is imported on a torch adapter's
first case. docs/BRIDGE.md explains the conventions each one declares.
"""

import numpy as np

from .bridge import Unsupported, float_to_half

__all__ = ["Unsupported", "NumpyRef", "numpy_ref", "Sdpa", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn",
           "sdpa_math", "Flex", "flex", "sdpa_misuse_scale1", "sdpa_misuse_topleft", "sdpa_misuse_gqa_mod",
           "flex_misuse_lse_base2"]


# ---- the contract in float64 -----------------------------------------------------------------

def attention_f64(q, k, v, allowed, scale, bias=None, kv_head=None):
    """One sequence: q [Lq, Hq, D], k, v [Lk, Hkv, D] float64; allowed [Hm, Lq, Lk]
    bool (Hm 1 or Hq); bias [Hm, Lq, Lk] or None; kv_head [Hq] -> the KV head each
    query head reads. Returns O [Lq, Hq, D] and the natural LSE [Lq, Hq]; a row
    with no allowed key is O = 0, LSE = -inf (docs/CONTRACT.md)."""
    lq, hq, d = q.shape
    kh = k[:, kv_head, :]                                   # [Lk, Hq, D]
    vh = v[:, kv_head, :]
    s = scale * np.einsum("qhd,khd->hqk", q, kh)            # [Hq, Lq, Lk]
    if bias is not None:
        s = s + bias
    s = np.where(allowed, s, -np.inf)
    with np.errstate(invalid="ignore"):
        m = s.max(axis=2, initial=-np.inf)                  # [Hq, Lq]
        empty = ~np.isfinite(m)
        p = np.exp(s - np.where(empty, 0.0, m)[..., None])
        p[empty] = 0.0
        l = p.sum(axis=2)
        o = np.einsum("hqk,khd->hqd", p, vh) / np.where(empty, 1.0, l)[..., None]
        lse = np.where(empty, -np.inf, m + np.log(np.where(empty, 1.0, l)))
    o[empty] = 0.0
    return o.transpose(1, 0, 2), lse.T


class NumpyRef:
    """The contract computed in float64 and rounded once to the output format:
    what the oracle computes, to double precision. Every family; LSE natural,
    empty rows O = 0, LSE = -inf, the guarded combine."""

    name = "numpy_ref"
    families = ("prefill", "decode", "combine", "store")
    lse = True
    lse_base = "e"
    empty_row = "zero_neginf"
    combine_empty = "guard"

    def _attention(self, case):
        o = np.zeros((case.total_q, case.heads_q, case.head_dim))
        lse = np.full((case.total_q, case.heads_q), -np.inf)
        kv_head = np.array([case.kv_head(h) for h in range(case.heads_q)], dtype=np.int64)
        q_all = case.values("q")
        for b in range(case.batch):
            rows = case.q_rows(b)
            if rows.stop == rows.start:
                continue
            k = case.kv(b, "k")
            v = case.kv(b, "v")
            m = case.mask_block(b)
            bias = m if m is not None and m.dtype != bool else None
            with np.errstate(invalid="ignore"):
                ob, lb = attention_f64(q_all[rows], case.values_of(k), case.values_of(v), case.allowed(b),
                                       case.scale_value(), bias, kv_head)
            o[rows], lse[rows] = ob, lb
        return o, lse

    def prefill(self, case):
        return self._attention(case)

    def decode(self, case):
        return self._attention(case)

    def combine(self, case):
        return self.combine_from(case.lse_part, case.o_part)

    @staticmethod
    def combine_from(lse_part, o_part):
        """The guarded combine of natural-log partials: lse_part [rows, S],
        o_part [rows, S, D] (NaN allowed where a split is empty)."""
        lse_part = np.asarray(lse_part, np.float64)
        o_part = np.asarray(o_part, np.float64)
        live = np.isfinite(lse_part)
        m = np.where(live, lse_part, -np.inf).max(axis=1)
        empty = ~np.isfinite(m)
        with np.errstate(invalid="ignore", over="ignore"):
            w = np.where(live, np.exp(lse_part - np.where(empty, 0.0, m)[:, None]), 0.0)
            total = w.sum(axis=1)
            o = np.einsum("rs,rsd->rd", w, np.where(live[..., None], o_part, 0.0))
            o = o / np.where(empty, 1.0, total)[:, None]
            lse = np.where(empty, -np.inf, m + np.log(np.where(empty, 1.0, total)))
        o[empty] = 0.0
        return o, lse

    def store(self, case):
        k = case.k_cache.copy().reshape(-1, case.heads_kv, case.head_dim)
        v = case.v_cache.copy().reshape(-1, case.heads_kv, case.head_dim)
        slots = case.slot_mapping
        keep = slots != -1
        k[slots[keep]] = case.k_new[keep]
        v[slots[keep]] = case.v_new[keep]
        return k.reshape(case.k_cache.shape), v.reshape(case.v_cache.shape)  # bit patterns, copied


numpy_ref = NumpyRef()
