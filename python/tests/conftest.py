"""Shared helpers: the package is imported from the source tree (no install
needed), and a float64 numpy attention reference checks that the layouts
capture converts to are the ones the dump format means."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def reference(q, k, v, cu_q, cu_k, causal="none", scale=None, mask=None, window=(-1, -1), softcap=0.0,
              alibi=None, alibi_abs=False):
    """Varlen NHD attention in float64: q [Tq, Hq, D], k, v [Tk, Hkv, D];
    mask [Hm, sum Lq*Lk] bool (True takes part) or additive; window (left, right)
    bottom-right aligned, -1 unbounded; softcap c caps the scaled logits; alibi [Hq] (or
    [B, Hq]) slopes times d = j - i - (Lk - Lq) (alibi_abs: flash-attn's -slope * |d|). Returns
    (out [Tq, Hq, D], natural-log LSE [Tq, Hq]; -inf for an empty row)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    hq, d = q.shape[1], q.shape[2]
    group = hq // k.shape[1]
    s = 1.0 / np.sqrt(d) if scale is None else scale
    out = np.zeros(q.shape[:2] + v.shape[2:])
    lse = np.full(q.shape[:2], -np.inf)
    col = 0
    for b in range(len(cu_q) - 1):
        q0, q1, k0, k1 = cu_q[b], cu_q[b + 1], cu_k[b], cu_k[b + 1]
        lq, lk = q1 - q0, k1 - k0
        i = np.arange(lq)[:, None]
        j = np.arange(lk)[None, :]
        allowed = {"none": np.ones((lq, lk), bool), "TL": j <= i, "BR": j <= i + (lk - lq)}[causal]
        dist = (j - i - (lk - lq)).astype(np.float64)
        if window[0] >= 0:
            allowed = allowed & (dist >= -window[0])
        if window[1] >= 0:
            allowed = allowed & (dist <= window[1])
        for h in range(hq):
            logits = s * q[q0:q1, h] @ k[k0:k1, h // group].T
            if softcap:
                logits = softcap * np.tanh(logits / softcap)
            if alibi is not None:
                sl = float(np.asarray(alibi).reshape(-1, hq)[b if np.ndim(alibi) == 2 else 0][h])  # [Hq] or [B, Hq]
                logits = logits + (-sl * np.abs(dist) if alibi_abs else sl * dist)
            ok = allowed.copy()
            if mask is not None:
                m = np.asarray(mask)[h if mask.shape[0] > 1 else 0, col:col + lq * lk].reshape(lq, lk)
                if m.dtype == bool:
                    ok &= m
                else:
                    logits = logits + m
            logits = np.where(ok, logits, -np.inf)
            top = np.max(logits, axis=1, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            p = np.exp(logits - top)
            total = p.sum(axis=1, keepdims=True)
            out[q0:q1, h] = np.where(total > 0, p @ v[k0:k1, h // group] / np.where(total > 0, total, 1), 0)
            with np.errstate(divide="ignore"):
                lse[q0:q1, h] = (top + np.log(total))[:, 0]
        col += lq * lk
    return out, lse


def unpage(cache, block_table, seqlens_k, kv_layout="NHD"):
    """A paged cache as contiguous [total_k, Hkv, D] rows, with cu_seqlens_k."""
    if kv_layout == "HND":
        cache = np.transpose(cache, (0, 2, 1, 3))
    block = cache.shape[1]
    rows = []
    for b, n in enumerate(seqlens_k):
        for p in range(int(n)):
            rows.append(cache[block_table[b][p // block], p % block])
    cu = np.concatenate([[0], np.cumsum(seqlens_k)]).astype(np.int64)
    return np.stack(rows) if rows else np.zeros((0,) + cache.shape[2:], cache.dtype), cu


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def f16(rng, *shape):
    return rng.standard_normal(shape).astype(np.float16)
