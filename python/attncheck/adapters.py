"""Adapters for attncheck's Python bridge (`--kernel py:attncheck.adapters:NAME`).

numpy_ref        the contract in float64 numpy, all four families (CI's end-to-end check)
sdpa_flash, sdpa_efficient, sdpa_cudnn, sdpa_math
                 torch.nn.functional.scaled_dot_product_attention on one backend each:
                 prefill (varlen as one call per sequence) and decode (the paged cache
                 gathered per sequence)
flex             torch.nn.attention.flex_attention, compiled: prefill and decode, the sequences
                 packed into one row (a mask_mod over document ids), paged K/V gathered
flex_paged       the same reading the paged pool in place (the mask_mod maps each slot
                 to its position through the block table)
flex_gqa_expanded
                 flex with GQA done by the adapter (K/V heads repeated), not enable_gqa
flashinfer       FlashInfer's batch wrappers (ragged and paged prefill, paged decode) and
                 merge_states; LSE in base 2
flex_eager, flex_paged_eager
                 the same two uncompiled on the CPU (flex's reference path): the adapter's
                 packing, masks and paging checked on any machine with torch
sdpa_misuse_scale1, sdpa_misuse_topleft, sdpa_misuse_gqa_mod, flex_misuse_lse_base2
                 classic wrapper bugs on real kernels, for the diagnosis demo: they must fail

Importing this module imports numpy only; torch is imported on a torch adapter's
first case. docs/BRIDGE.md explains the conventions each one declares.
"""

import numpy as np

from .bridge import Unsupported, float_to_fp8

__all__ = ["Unsupported", "NumpyRef", "numpy_ref", "Sdpa", "sdpa_flash", "sdpa_efficient", "sdpa_cudnn",
           "sdpa_math", "Flex", "flex", "flex_paged", "FlexEager", "flex_eager", "flex_paged_eager",
           "flex_gqa_expanded", "flex_eager_gqa_expanded", "FlashInfer", "flashinfer",
           "sdpa_misuse_scale1", "sdpa_misuse_topleft", "sdpa_misuse_gqa_mod", "flex_misuse_lse_base2"]


# ---- the contract in float64 -----------------------------------------------------------------

def attention_f64(q, k, v, allowed, scale, bias=None, kv_head=None, softcap=0.0, alibi=None, sinks=None,
                  softcap_after_mask=False):
    """One sequence: q [Lq, Hq, D], k, v [Lk, Hkv, D] float64; allowed [Hm, Lq, Lk]
    bool (Hm 1 or Hq); bias [Hm, Lq, Lk] or None; kv_head [Hq] -> the KV head each
    query head reads. Features (docs/CONTRACT.md): softcap c > 0 caps scale * q.k as
    c * tanh(s / c); alibi [Hq, Lq, Lk] is added after it (slope_h times the signed
    distance), then the bias; sinks [Hq] (natural-log logits, -inf = none) join each
    row's denominator only. Returns O [Lq, Hq, D] and the natural LSE [Lq, Hq]; a row
    with no allowed key is O = 0 and LSE = its sink (-inf without one).
    softcap_after_mask: the classic bug, tanh applied last, after ALiBi, the bias and
    the masking: an allowed key's logit is c * tanh((s + alibi + bias) / c), and every
    excluded key of the row (causal, window, mask, -inf bias) weighs in with -c."""
    lq, hq, d = q.shape
    kh = k[:, kv_head, :]                                   # [Lk, Hq, D]
    vh = v[:, kv_head, :]
    s = scale * np.einsum("qhd,khd->hqk", q, kh)            # [Hq, Lq, Lk]
    last = bool(softcap) and softcap_after_mask
    if softcap and not last:
        s = softcap * np.tanh(s / softcap)
    if alibi is not None:
        s = s + alibi
    if bias is not None:
        s = s + bias
    excluded = ~np.broadcast_to(allowed, s.shape) | (s == -np.inf)
    if last:
        s = softcap * np.tanh(s / softcap)
    s = np.where(excluded, -softcap if last else -np.inf, s)
    sink = np.full(hq, -np.inf) if sinks is None else np.asarray(sinks, np.float64)
    with np.errstate(invalid="ignore"):
        m = np.maximum(s.max(axis=2, initial=-np.inf), sink[:, None])  # [Hq, Lq]
        empty = ~np.isfinite(m)
        mm = np.where(empty, 0.0, m)
        p = np.exp(s - mm[..., None])
        p[empty] = 0.0
        l = p.sum(axis=2) + np.where(empty, 0.0, np.exp(sink[:, None] - mm))
        o = np.einsum("hqk,khd->hqd", p, vh) / np.where(empty, 1.0, l)[..., None]
        lse = np.where(empty, -np.inf, mm + np.log(np.where(empty, 1.0, l)))
    o[empty] = 0.0
    return o.transpose(1, 0, 2), lse.T


class NumpyRef:
    """The contract computed in float64 and rounded once to the output format:
    what the oracle computes, to double precision. Every family; LSE natural,
    empty rows O = 0, LSE = -inf, the guarded combine; windows, softcap, ALiBi
    and sinks on prefill and decode; an FP8 cache with its scales and D_v !=
    D_qk on prefill, decode and store. Subclasses (python/tests/bridge_adapters.py)
    change one hook to compute a classic wrong question."""

    name = "numpy_ref"
    families = ("prefill", "decode", "combine", "store")
    lse = True
    lse_base = "e"
    empty_row = "zero_neginf"
    combine_empty = "guard"
    features = {"prefill": ["window", "softcap", "alibi", "sinks", "fp8kv", "dv"],
                "decode": ["window", "softcap", "alibi", "sinks", "fp8kv", "dv"], "store": ["fp8kv", "dv"]}
    softcap_after_mask = False

    # ---- hooks: what the kernel computes, by default the contract ----
    def _kv_head(self, case, h):
        return case.kv_head(h)

    def _allowed(self, case, b):
        return case.allowed(b)

    def _scale(self, case):
        return case.scale_value()

    def _alibi(self, case, b):
        """[Hq, Lq, Lk] bias, or None."""
        if case.alibi_slopes is None:
            return None
        return case.alibi_slopes.astype(np.float64)[:, None, None] * case.alibi_dist(b)[None]

    def _softcap(self, case):
        return case.softcap

    def _sinks(self, case):
        return None if case.sinks is None else case.sinks.astype(np.float64)

    def _kv_values(self, case, b, name):
        """Sequence b's K or V values [Lk, Hkv, D or D_v], float64: decode(code) * scale
        with an FP8 cache."""
        return case.kv_values(b, name)

    def _attention(self, case):
        o = np.zeros((case.total_q, case.heads_q, case.head_dim_v))
        lse = np.full((case.total_q, case.heads_q), -np.inf)
        kv_head = np.array([self._kv_head(case, h) for h in range(case.heads_q)], dtype=np.int64)
        q_all = case.values("q")
        sinks = self._sinks(case)
        if sinks is not None:  # a keyless row holds its sink as LSE, also in an empty sequence
            lse[...] = sinks[None, :]
        for b in range(case.batch):
            rows = case.q_rows(b)
            if rows.stop == rows.start:
                continue
            m = case.mask_block(b)
            bias = m if m is not None and m.dtype != bool else None
            with np.errstate(invalid="ignore"):
                ob, lb = attention_f64(q_all[rows], self._kv_values(case, b, "k"), self._kv_values(case, b, "v"),
                                       self._allowed(case, b),
                                       self._scale(case), bias, kv_head, softcap=self._softcap(case),
                                       alibi=self._alibi(case, b), sinks=sinks,
                                       softcap_after_mask=self.softcap_after_mask)
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
        v = case.v_cache.copy().reshape(-1, case.heads_kv, case.head_dim_v)
        slots = case.slot_mapping
        keep = slots != -1
        k_new, v_new = case.k_new[keep], case.v_new[keep]
        if case.fp8():  # each new element quantised with its KV head's scale (kv-spec)
            k_new = float_to_fp8(case.values_of(k_new), case.kv_format, case.kv_scales_per_head("k")[:, None])
            v_new = float_to_fp8(case.values_of(v_new), case.kv_format, case.kv_scales_per_head("v")[:, None])
        k[slots[keep]] = k_new
        v[slots[keep]] = v_new
        return k.reshape(case.k_cache.shape), v.reshape(case.v_cache.shape)  # bit patterns or codes, copied


numpy_ref = NumpyRef()


# ---- torch: shared plumbing --------------------------------------------------------------------

def _torch():
    import torch
    return torch


def _no_kernel(e, caught):
    """Unsupported with torch's own reasons (the warnings SDPA printed before
    'No available kernel'), or None when e is another error."""
    text = str(e)
    if "No available kernel" not in text and "not supported" not in text.lower():
        return None
    why = "; ".join(str(w.message).strip().replace("\n", " ") for w in caught) or text
    return Unsupported(why[:400])


class _TorchAttention:
    """Varlen attention as one torch call per sequence (or per packed batch):
    q, k, v gathered on the device in [1, H, L, D]."""

    families = ("prefill", "decode")
    device = "cuda"

    def _seq(self, case, b, q, k_all, v_all):
        """Sequence b's q [1, Hq, Lq, D], k, v [1, Hkv, Lk, D] on the device."""
        torch = _torch()
        rows = case.q_rows(b)
        idx = torch.from_numpy(case.kv_rows(b)).to(self.device)
        qb = q[rows].transpose(0, 1).unsqueeze(0)
        kb = k_all.index_select(0, idx).transpose(0, 1).unsqueeze(0)
        vb = v_all.index_select(0, idx).transpose(0, 1).unsqueeze(0)
        return qb, kb, vb

    def _on_device(self, a, dtype=None):
        """A numpy array (made contiguous, in dtype if given) as a tensor on the device."""
        return _torch().from_numpy(np.ascontiguousarray(a, dtype)).to(self.device)

    def _kv_all(self, case):
        """K and V as [rows, Hkv, D] and [rows, Hkv, D_v] tensors: the token rows, or the
        cache's slots. An FP8 cache is dequantised in fp32, x.float() * scale of its KV head,
        then rounded once to the query's dtype (a freedom the contract gives a kernel)."""
        if case.paged:
            k = case.torch("k_cache", self.device).reshape(-1, case.heads_kv, case.head_dim)
            v = case.torch("v_cache", self.device).reshape(-1, case.heads_kv, case.head_dim_v)
        else:
            k, v = case.torch("k", self.device), case.torch("v", self.device)
        if case.fp8():
            torch = _torch()
            ks = torch.tensor(case.kv_scales_per_head("k"), dtype=torch.float32, device=k.device)[:, None]
            vs = torch.tensor(case.kv_scales_per_head("v"), dtype=torch.float32, device=v.device)[:, None]
            k = (k.float() * ks).to(case.torch_dtype())
            v = (v.float() * vs).to(case.torch_dtype())
        return k, v

    def _expand(self, case, kb, mapping="contiguous"):
        """K/V heads expanded to Hq: head h reads h // (Hq/Hkv), or (the bug) h % Hkv."""
        torch = _torch()
        g = case.heads_q // case.heads_kv
        if g == 1:
            return kb
        if mapping == "mod":
            idx = torch.tensor([h % case.heads_kv for h in range(case.heads_q)], device=kb.device)
            return kb.index_select(1, idx)
        return kb.repeat_interleave(g, dim=1)


# ---- SDPA ----------------------------------------------------------------------------------------------

class Sdpa(_TorchAttention):
    """torch.nn.functional.scaled_dot_product_attention on one backend
    (torch.nn.attention.sdpa_kernel([SDPBackend.X])): prefill as one call per
    sequence, decode with the paged cache gathered per sequence. TOP_LEFT is
    is_causal; BOTTOM_RIGHT is is_causal when Lq = Lk, else an explicit
    lower-right bool mask (flash takes no mask: there the op SDPA's flash
    backend and causal_lower_right call, aten._scaled_dot_product_flash_attention,
    whose is_causal is lower-right); explicit masks through attn_mask (an fp32
    bias only where it is exact in the query's dtype). A backend that cannot
    run a case raises Unsupported with torch's reason.

    SDPA returns no LSE. Empty rows: what a correct fused kernel gives for a row
    with no key is O = 0 (math since 2.5); the bridge checks only O there
    (no LSE), so "zero_neginf" declares O = 0, and a backend giving NaN fails
    with the empty-row report saying so."""

    lse = False
    lse_base = "e"
    empty_row = "zero_neginf"
    # misuse switches (the diagnosis demo)
    scale_one = False
    top_left = False
    gqa_mod = False

    def __init__(self, backend, name):
        self.backend, self.name = backend, name
        # SDPA has no window, softcap, ALiBi or sinks: a window and ALiBi go in attn_mask on the
        # backends that take one (flash takes none); softcap and sinks it cannot express.
        # An FP8 cache is dequantised before the call (every backend); D_v != D_qk only where
        # PyTorch's backend takes it (math, efficient: flash and cuDNN want equal dims).
        both = ["window", "alibi"] if backend != "FLASH_ATTENTION" else []
        both = both + ["fp8kv"] + (["dv"] if backend in ("MATH", "EFFICIENT_ATTENTION") else [])
        self.features = {"prefill": both, "decode": both}

    def _scale(self, case):
        if case.scale is None:
            return 1.0 if self.scale_one else None
        return float(case.scale)

    def _feature_mask(self, case, b, qb, causal):
        """A window and ALiBi as SDPA's attn_mask: the allowed set (causal mode, window,
        a bool mask) as a bool mask, or with ALiBi or an additive mask the bias
        slope_h * (j - i - (Lk - Lq)) (fp32, as kernels compute it) plus that mask, -inf
        where not allowed, [1 or Hq, Lq, Lk] in the query's dtype where it is exact there."""
        torch = _torch()
        if self.backend == "FLASH_ATTENTION":
            raise Unsupported("SDPA's flash backend takes no attn_mask: a window or ALiBi needs one")
        lq, lk = case.seqlen_q[b], case.seqlen_k[b]
        if causal == "TL":
            allowed = np.arange(lk)[None, :] <= np.arange(lq)[:, None]
        else:
            allowed = case.causal_allowed(b) if causal == "BR" else np.ones((lq, lk), bool)
        allowed = (allowed & case.window_allowed(b))[None]
        m = case.mask_block(b)
        if m is not None and m.dtype == bool:
            allowed = allowed & m
        if case.alibi_slopes is None and (m is None or m.dtype == bool):
            return torch.from_numpy(np.ascontiguousarray(allowed)).to(qb.device)[None], False
        bias = np.zeros((1, lq, lk), np.float32)
        if case.alibi_slopes is not None:
            bias = case.alibi_slopes.astype(np.float32)[:, None, None] * case.alibi_dist(b).astype(np.float32)[None]
        if m is not None and m.dtype != bool:
            bias = bias + m
        bias = np.where(allowed, bias, -np.inf).astype(np.float32)
        return self._exact_bias(case, bias, qb), False

    def _exact_bias(self, case, bias, qb):
        """An fp32 bias as attn_mask in the query's dtype, or Unsupported when it is not exact there."""
        torch = _torch()
        t = torch.from_numpy(np.ascontiguousarray(bias)).to(qb.device)
        exact = t.to(qb.dtype).to(torch.float32)
        if not torch.equal(exact[torch.isfinite(t)], t[torch.isfinite(t)]):
            raise Unsupported("SDPA takes an additive mask in the query's dtype (%s): this fp32 bias is not exact "
                              "in it" % case.dtype)
        return t.to(qb.dtype)[None]

    def _mask(self, case, b, qb):
        """(attn_mask, is_causal) for sequence b, or raise Unsupported."""
        torch = _torch()
        lq, lk = case.seqlen_q[b], case.seqlen_k[b]
        causal = "TL" if (self.top_left and case.causal == "BR") else case.causal
        if case.has_window() or case.alibi_slopes is not None:
            return self._feature_mask(case, b, qb, causal)
        m = case.mask_block(b)
        if m is None:
            if causal == "none":
                return None, False
            if causal == "TL" or lq == lk:
                return None, True
            if causal == "BR" and lq == 1:  # one query at the end sees every key: no mask at all
                return None, False
            return torch.from_numpy(case.causal_allowed(b)).to(qb.device)[None, None], False
        allowed = case.causal_allowed(b) if causal != "TL" else (np.arange(lk)[None, :] <= np.arange(lq)[:, None])
        if causal == "none":
            allowed = np.ones((lq, lk), bool)
        if m.dtype == bool:
            return torch.from_numpy(m & allowed[None]).to(qb.device)[None], False
        bias = np.where(allowed[None], m, -np.inf).astype(np.float32)
        return self._exact_bias(case, bias, qb), False

    def _run(self, case):
        import warnings
        torch = _torch()
        from torch.nn.attention import SDPBackend, sdpa_kernel
        import torch.nn.functional as F
        backend = getattr(SDPBackend, self.backend)
        q = case.torch("q", self.device)
        k_all, v_all = self._kv_all(case)
        out = q.new_zeros((case.total_q, case.heads_q, case.head_dim_v))
        scale = self._scale(case)
        for b in range(case.batch):
            if case.seqlen_q[b] == 0:
                continue
            qb, kb, vb = self._seq(case, b, q, k_all, v_all)
            mask, is_causal = self._mask(case, b, qb)
            gqa = case.heads_q != case.heads_kv
            if gqa and self.gqa_mod:
                kb, vb = self._expand(case, kb, "mod"), self._expand(case, vb, "mod")
                gqa = False
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    ob = self._call(F, sdpa_kernel, backend, case, qb, kb, vb, mask, is_causal, scale, gqa)
                except RuntimeError as e:
                    u = _no_kernel(e, caught)
                    if u is None:
                        raise
                    raise u
            out[case.q_rows(b)] = ob[0].transpose(0, 1)
        return out

    def _call(self, F, sdpa_kernel, backend, case, qb, kb, vb, mask, is_causal, scale, gqa):
        torch = _torch()
        if self.backend == "FLASH_ATTENTION" and mask is not None and case.mask == "none" and case.causal == "BR" \
                and not self.top_left:
            # Bottom-right causal on flash: the op behind SDPA's flash backend, lower-right when is_causal.
            ke, ve = (self._expand(case, x) for x in (kb, vb)) if gqa else (kb, vb)
            # SDPA's gate refuses is_causal with Lq != Lk (its is_causal is top-left); ask it
            # about the rest (dtype, head dim, device) without the flag.
            params = torch.backends.cuda.SDPAParams(qb, ke, ve, None, 0.0, False, False)
            if not torch.backends.cuda.can_use_flash_attention(params, True):
                raise RuntimeError("No available kernel: flash cannot run this bottom-right case")
            # The op takes head dims in multiples of 8 ("ensured by padding" in SDPA's front end):
            # pad with zeros as the front end does, the default scale of the true D made explicit.
            d = case.head_dim
            if d % 8:
                pad = lambda x: F.pad(x, (0, 8 - d % 8))  # noqa: E731
                qb, ke, ve = pad(qb), pad(ke), pad(ve)
                scale = 1.0 / float(np.sqrt(d)) if scale is None else scale
            o = torch.ops.aten._scaled_dot_product_flash_attention(qb, ke, ve, 0.0, True, False, scale=scale)[0]
            return o[..., :d]
        with sdpa_kernel([backend]):
            try:
                return F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, is_causal=is_causal, scale=scale,
                                                      enable_gqa=gqa)
            except RuntimeError as e:
                if not gqa or "No available kernel" not in str(e):
                    raise
            # This backend lacks enable_gqa: the same heads, repeated in contiguous groups.
            return F.scaled_dot_product_attention(qb, self._expand(case, kb), self._expand(case, vb), attn_mask=mask,
                                                  is_causal=is_causal, scale=scale)

    def prefill(self, case):
        return self._run(case)

    def decode(self, case):
        return self._run(case)


sdpa_flash = Sdpa("FLASH_ATTENTION", "sdpa_flash")
sdpa_efficient = Sdpa("EFFICIENT_ATTENTION", "sdpa_efficient")
sdpa_cudnn = Sdpa("CUDNN_ATTENTION", "sdpa_cudnn")
sdpa_math = Sdpa("MATH", "sdpa_math")


def _misuse(name, **bug):
    a = Sdpa("EFFICIENT_ATTENTION", name)
    for k, v in bug.items():
        setattr(a, k, v)
    return a


# The wrappers' classic bugs on a real kernel (memory-efficient SDPA, which takes masks): each must fail,
# and the diagnosis must name it.
sdpa_misuse_scale1 = _misuse("sdpa_misuse_scale1", scale_one=True)     # scale=1.0 for the default
sdpa_misuse_topleft = _misuse("sdpa_misuse_topleft", top_left=True)    # is_causal where BOTTOM_RIGHT is declared
sdpa_misuse_gqa_mod = _misuse("sdpa_misuse_gqa_mod", gqa_mod=True)     # K/V heads in h % Hkv order


# ---- FlexAttention ------------------------------------------------------------------------------------------

class _FlexState:
    """The current case's lookup tables, read by the module-level mask_mod and
    score_mod: the same function objects every case, and every mode (causal
    or not, which mask, per head or not) a value in a tensor, not a Python
    branch, so torch.compile guards on the tables' metadata only and compiles
    once per (heads, head dim, dtype) instead of once per mode as well."""


_FLEX = _FlexState()


def _flex_key(q_idx, kv_idx):
    """(kv_idx is a key of q_idx's sequence, its position in that sequence)."""
    st = _FLEX
    if st.in_place:
        p = st.logical[st.d_q[q_idx], kv_idx]
        return p >= 0, p
    return st.d_k[kv_idx] == st.d_q[q_idx], st.p_k[kv_idx]


def _flex_entry(h, q_idx, p):
    """The additive bias of (head h, query q_idx, key position p): the explicit
    mask (a bool mask as 0 / -inf), or the single 0 entry without a mask."""
    st = _FLEX
    d = st.d_q[q_idx]
    i = st.moff[d] + (h * st.per_head * st.LQ[d] + st.p_q[q_idx]) * st.LK[d] + p.clamp(min=0)
    return st.flat[i.clamp(max=st.flat.numel() - 1)]


def _flex_mask_mod(b, h, q_idx, kv_idx):
    st = _FLEX
    ok, p = _flex_key(q_idx, kv_idx)
    # The causal bound of q_idx's sequence: p <= row + shift (TOP_LEFT 0, BOTTOM_RIGHT
    # Lk - Lq, none a shift past every key). A -inf bias is a masked key, which the
    # block mask then skips.
    ok = ok & (p <= st.p_q[q_idx] + st.shift[st.d_q[q_idx]])
    return ok & (_flex_entry(h, q_idx, p) != float("-inf"))


def _flex_window_mask_mod(b, h, q_idx, kv_idx):
    """_flex_mask_mod and the sliding window, bottom-right like flash-attn's window_size:
    -left <= p - (row + Lk - Lq) <= right (an unbounded side is a bound past every key)."""
    st = _FLEX
    _, p = _flex_key(q_idx, kv_idx)
    dist = p - st.p_q[q_idx] - st.off[st.d_q[q_idx]]
    return _flex_mask_mod(b, h, q_idx, kv_idx) & (dist >= -st.win_left) & (dist <= st.win_right)


def _flex_score_mod(score, b, h, q_idx, kv_idx):
    _, p = _flex_key(q_idx, kv_idx)
    return score + _flex_entry(h, q_idx, p)


def _flex_feature_score_mod(score, b, h, q_idx, kv_idx):
    """softcap on scale * q.k (flex passes the scaled score), then ALiBi's
    slope_h * (p - row - (Lk - Lq)), then the explicit bias (docs/CONTRACT.md's order).
    A case without softcap carries cap 0 and takes the score as it is."""
    st = _FLEX
    _, p = _flex_key(q_idx, kv_idx)
    capped = st.cap * _torch().tanh(score / st.cap_div)
    score = _torch().where(st.cap > 0, capped, score)
    dist = (p - st.p_q[q_idx] - st.off[st.d_q[q_idx]]).to(score.dtype)
    return score + st.slopes[h] * dist + _flex_entry(h, q_idx, p)


def _with_sinks(o, lse, sinks):
    """Sinks joined to a kernel's result over the keys alone (O [T, H, D], natural LSE
    [T, H], sinks [H], -inf = none): LSE' = ln(e^LSE + e^sink), O' = O e^(LSE - LSE'),
    in fp32. A keyless row (O = 0, LSE = -inf) becomes O = 0, LSE = sink. This is
    the adapter's composition, which the check then judges (docs/BRIDGE.md)."""
    torch = _torch()
    both = torch.logaddexp(lse, sinks[None, :])
    w = torch.where(torch.isfinite(both), torch.exp(lse - both), torch.zeros_like(lse))
    return o.float() * w[..., None], both


def _padded(n, tile=128):
    """n rounded up to the tile, plus one tile."""
    return (n + tile - 1) // tile * tile + tile


class Flex(_TorchAttention):
    """torch.nn.attention.flex_attention, compiled once per worker
    (torch.compile(flex_attention, dynamic=True): a new shape may still
    recompile, tens of seconds on the first cases). All sequences are packed
    into one batch row: a mask_mod keeps each query to its own sequence
    (document ids), applies the causal mode per sequence and looks the
    explicit bool mask up; an additive mask is a score_mod. Paged K/V: with
    paged_in_place (flex_paged) the whole pool is the key axis and the mask_mod
    maps a slot to its logical position through the block table (the cache is
    read in place); otherwise (flex) each sequence's positions are gathered.
    LSE: return_lse / AuxRequest(lse=True), natural (the public API converts
    the kernel's base 2); empty rows: O = 0, LSE = -inf."""

    lse = True
    lse_base = "e"
    empty_row = "zero_neginf"
    # the window as a mask_mod, softcap and ALiBi as a score_mod, sinks composed with the LSE;
    # an FP8 cache dequantised before the call; flex takes a V head dim of its own
    features = {"prefill": ["window", "softcap", "alibi", "sinks", "fp8kv", "dv"],
                "decode": ["window", "softcap", "alibi", "sinks", "fp8kv", "dv"]}
    report_base2 = False      # misuse: hand back the LSE in base 2 while declaring e
    paged_in_place = False
    expand_gqa = False        # K/V heads repeated to Hq by the adapter, flex called without enable_gqa

    def __init__(self, name, **kw):
        self.name = name
        self._compiled = None
        for k, v in kw.items():
            setattr(self, k, v)

    def _fa(self):
        if self._compiled is None:
            torch = _torch()
            from torch.nn.attention.flex_attention import flex_attention
            # Each mode (causal, mask kind, paging) is its own graph: room for all of them.
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self._compiled = torch.compile(flex_attention, dynamic=True)
        return self._compiled

    def _run(self, case):
        torch = _torch()
        from torch.nn.attention.flex_attention import create_block_mask
        dev = self.device
        q = case.torch("q", dev)                          # [Tq, Hq, D]
        tq = case.total_q
        k_all, v_all = self._kv_all(case)
        lq = np.array(case.seqlen_q, np.int64)
        lk = np.array(case.seqlen_k, np.int64)
        cu_q = np.concatenate([[0], np.cumsum(lq)])
        doc_q = np.repeat(np.arange(case.batch), lq)
        qpos = np.arange(tq) - cu_q[doc_q]
        if case.paged and self.paged_in_place:
            k, v = k_all, v_all                            # [slots, Hkv, D]: the pool, in place
            nslots = k.shape[0]
            logical = np.full((max(case.batch, 1), nslots), -1, np.int64)
            for b in range(case.batch):
                rows = case.kv_rows(b)
                if len(np.unique(rows)) != len(rows):
                    # One slot, two positions of one sequence (a block listed twice in its table):
                    # a mask over the pool can let a slot in once, not twice.
                    raise Unsupported("flex_paged reads the pool in place: sequence %d lists a block twice in its "
                                      "block table" % b)
                logical[b, rows] = np.arange(lk[b])
            tk = nslots
        else:
            rows = np.concatenate([case.kv_rows(b) for b in range(case.batch)] or [np.zeros(0, np.int64)])
            idx = torch.from_numpy(rows).to(dev)
            k, v = k_all.index_select(0, idx), v_all.index_select(0, idx)
            tk = len(rows)
            cu_k = np.concatenate([[0], np.cumsum(lk)])
            doc_k = np.repeat(np.arange(case.batch), lk)
            kpos = np.arange(tk) - cu_k[doc_k]
        if tq == 0 or tk == 0:
            raise Unsupported("flex_attention needs at least one query and one key in the batch")
        T = self._on_device
        # Lookup tables padded past the lengths: the kernel may evaluate the mask
        # on indices of its last, partial tile (they are masked out, never read).
        pad_q, pad_k = _padded(tq), _padded(tk)
        st = _FLEX
        shift = {"none": np.full_like(lk, 1 << 40), "TL": np.zeros_like(lk), "BR": lk - lq}[case.causal]
        st.shift = T(shift)
        per_head = 1 if case.mask != "none" and case.mask_per_head else 0
        st.per_head = torch.tensor(per_head, dtype=torch.int64, device=dev)
        st.in_place = bool(case.paged and self.paged_in_place)
        st.d_q = T(np.pad(doc_q, (0, pad_q - tq)))
        st.p_q = T(np.pad(qpos, (0, pad_q - tq)))
        st.LQ, st.LK = T(lq), T(lk)
        if st.in_place:
            st.logical = T(np.pad(logical, ((0, 0), (0, pad_k - tk)), constant_values=-1))
        else:
            st.d_k = T(np.pad(doc_k, (0, pad_k - tk), constant_values=-1))
            st.p_k = T(np.pad(kpos, (0, pad_k - tk)))
        if case.mask != "none":
            # Every mask as an fp32 bias (a bool mask as 0 / -inf: adding 0 leaves a logit
            # exact), with one masked entry past the end: the lookup clamps its index
            # there, and a batch whose sequences all lack queries or keys has an empty mask.
            m = np.asarray(case.arrays["mask"]).reshape(-1)
            if case.mask == "bool":  # (bytes, 0 or 1)
                m = np.where(m != 0, np.float32(0), np.float32(-np.inf))
            st.flat = T(np.concatenate([m.astype(np.float32), np.array([-np.inf], np.float32)]))
            st.moff = T(np.asarray(case.arrays["mask_off"], np.int64))
        else:  # one 0 entry that every lookup clamps to
            st.flat = T(np.zeros(1, np.float32))
            st.moff = T(np.zeros(max(case.batch, 1), np.int64))
        # Features: the window in the mask_mod, softcap and ALiBi in the score_mod, the
        # sinks composed with flex's LSE after the call (below).
        big = 1 << 40
        st.off = T(lk - lq)
        st.win_left = torch.tensor(case.window_left if case.window_left >= 0 else big, dtype=torch.int64, device=dev)
        st.win_right = torch.tensor(case.window_right if case.window_right >= 0 else big, dtype=torch.int64,
                                    device=dev)
        st.cap = torch.tensor(case.softcap, dtype=torch.float32, device=dev)
        st.cap_div = torch.tensor(case.softcap if case.softcap > 0 else 1.0, dtype=torch.float32, device=dev)
        slopes = case.alibi_slopes if case.alibi_slopes is not None else np.zeros(case.heads_q, np.float32)
        st.slopes = T(np.asarray(slopes, np.float32))
        mask_mod = _flex_window_mask_mod if case.has_window() else _flex_mask_mod
        H = case.heads_q if case.mask != "none" and case.mask_per_head else None
        bm = create_block_mask(mask_mod, 1, H, tq, tk, device=dev)
        qq = q.transpose(0, 1).unsqueeze(0)
        kk = k.transpose(0, 1).unsqueeze(0).contiguous()
        vv = v.transpose(0, 1).unsqueeze(0).contiguous()
        gqa = case.heads_q != case.heads_kv
        if gqa and self.expand_gqa:  # query head h reads KV head h // (Hq / Hkv)
            g = case.heads_q // case.heads_kv
            kk, vv, gqa = kk.repeat_interleave(g, dim=1), vv.repeat_interleave(g, dim=1), False
        # The default scale given as flex computes it (1/sqrt(D) in double): one graph for
        # both, where None and a float are two. A score_mod only for an additive mask (a
        # bool mask's 0 / -inf is all in the mask_mod): two graphs, not one, but the
        # kernel without a score_mod, the common case, is the one judged elsewhere.
        scale = 1.0 / float(np.sqrt(case.head_dim)) if case.scale is None else float(case.scale)
        score_mod = _flex_score_mod if case.mask == "additive" else None
        if case.softcap > 0 or case.alibi_slopes is not None:
            score_mod = _flex_feature_score_mod
        kwargs = dict(score_mod=score_mod, block_mask=bm, scale=scale,
                      enable_gqa=gqa)
        if case.head_dim < 16:  # Inductor's flex lowering: "NYI: embedding dimension ... must be at least 16"
            raise Unsupported("flex_attention compiles head dims of 16 and more (got %d)" % case.head_dim)
        try:
            try:
                from torch.nn.attention.flex_attention import AuxRequest
                o, aux = self._fa()(qq, kk, vv, return_aux=AuxRequest(lse=True), **kwargs)
                lse = aux.lse
            except ImportError:
                o, lse = self._fa()(qq, kk, vv, return_lse=True, **kwargs)
        except Exception as e:  # what the library says it does not implement is unsupported, not wrong
            if "NYI" in str(e) or isinstance(e, NotImplementedError):
                raise Unsupported("flex_attention: %s" % str(e).splitlines()[-1][:200])
            raise
        lse = lse[0].transpose(0, 1).float()
        o = o[0].transpose(0, 1)
        if case.sinks is not None:
            o, lse = _with_sinks(o, lse, self._on_device(case.sinks, np.float32))
        if self.report_base2:
            lse = lse / float(np.log(2.0))
        return o, lse

    def prefill(self, case):
        return self._run(case)

    def decode(self, case):
        return self._run(case)


class FlexEager(Flex):
    """flex_attention uncompiled, on the CPU: its reference path (a masked matrix of
    scores), not a kernel. It checks the adapter's packing, masks and paging against
    the contract on any machine with torch, before a GPU run judges the kernel
    (python/tests/test_flex_eager.py)."""
    device = "cpu"

    def _fa(self):
        from torch.nn.attention.flex_attention import flex_attention
        return flex_attention


# ---- FlashInfer ----------------------------------------------------------------------------------------

class FlashInfer(_TorchAttention):
    """FlashInfer's batch wrappers, planned for each case as an engine plans them
    for a step: prefill on a contiguous batch through
    BatchPrefillWithRaggedKVCacheWrapper, on a paged cache through
    BatchPrefillWithPagedKVCacheWrapper (NHD pages of block_size tokens, the
    block table as CSR page lists and last-page lengths); decode through
    BatchDecodeWithPagedKVCacheWrapper when every sequence has one query, else
    the paged prefill wrapper (several queries per step: FlashInfer's causal is
    bottom-right); the combine through merge_states. Its causal flag is
    bottom-right, so TOP_LEFT with Lq != Lk and a boolean mask go in custom_mask
    (one [Lq, Lk] block per request: per-head masks and additive masks are
    unsupported). LSE in base 2, as FlashInfer returns it, in and out of the
    combine. What FlashInfer refuses (a head dim, a group size) is unsupported."""

    families = ("prefill", "decode", "combine")
    # window_left and logits_soft_cap are plan() arguments of every wrapper; ALiBi (its own
    # slopes only) and sinks (not in the wrappers' plan/run) are not declared.
    features = {"prefill": ["window", "softcap"], "decode": ["window", "softcap"]}
    lse = True
    lse_base = "2"
    empty_row = "zero_neginf"
    combine_empty = "guard"
    workspace_bytes = 128 << 20

    def __init__(self, name):
        self.name = name
        self._ws = None

    def _fi(self):
        import flashinfer
        return flashinfer

    def _workspace(self):
        if self._ws is None:
            self._ws = _torch().zeros(self.workspace_bytes, dtype=_torch().uint8, device=self.device)
        return self._ws

    def _refused(self, e):
        text = str(e)
        low = text.lower()
        if isinstance(e, NotImplementedError) or "not supported" in low or "unsupported" in low:
            return Unsupported("FlashInfer: %s" % text.splitlines()[0][:200] if text else type(e).__name__)
        return None

    def _window(self, case):
        """(window_left, causal) when FlashInfer's own window says the case's causal mode
        and window: its window_left is the left side, bottom-right aligned like its causal
        flag, with no right side of its own (causal gives right = 0). None when it cannot."""
        if not case.has_window():
            return -1, case.causal != "none"
        if case.causal == "TL" and any(case.seqlen_q[b] != case.seqlen_k[b] for b in range(case.batch)):
            return None
        wr, causal = case.window_right, case.causal != "none"
        if wr < 0 or causal:       # no right side, or the causal bound is the tighter one
            return case.window_left, causal
        if wr == 0:                # right = 0 without a causal mode: the bottom-right causal flag
            return case.window_left, True
        return None

    def _masks(self, case):
        """(custom_mask or None, causal flag, window_left): the allowed keys of each
        request, flattened and concatenated, where FlashInfer's causal flag and
        window_left cannot say them."""
        if case.mask == "additive":
            raise Unsupported("FlashInfer takes a boolean custom_mask, not an additive bias")
        if case.mask == "bool" and case.mask_per_head:
            raise Unsupported("FlashInfer's custom_mask is one per request, not one per head")
        top_left_differs = case.causal == "TL" and any(
            case.seqlen_q[b] != case.seqlen_k[b] for b in range(case.batch))
        window = self._window(case)
        if case.mask == "none" and not top_left_differs and window is not None:
            return None, window[1], window[0]
        parts = [case.allowed(b)[0].reshape(-1) for b in range(case.batch)]  # the window included
        return self._on_device(np.concatenate(parts) if parts else np.zeros(0, bool)), False, -1

    def _pages(self, case):
        """CSR page lists of the block table: indptr, indices, last-page lengths."""
        bs = case.block_size
        table = np.asarray(case.arrays["block_table"]).reshape(case.batch, -1)
        n = [(int(lk) + bs - 1) // bs for lk in case.seqlen_k]
        indptr = np.concatenate([[0], np.cumsum(n)]).astype(np.int32)
        indices = np.concatenate([table[b, :n[b]] for b in range(case.batch)] or [np.zeros(0)]).astype(np.int32)
        last = np.array([int(lk) - (m - 1) * bs if m else 0 for lk, m in zip(case.seqlen_k, n)], np.int32)
        return self._on_device(indptr), self._on_device(indices), self._on_device(last)

    def _cache(self, case):
        shape = (case.num_blocks, case.block_size, case.heads_kv, case.head_dim)
        return (case.torch("k_cache", self.device).reshape(shape), case.torch("v_cache", self.device).reshape(shape))

    def _attention(self, case, decode):
        fi = self._fi()
        q = case.torch("q", self.device)
        dt = q.dtype
        scale = None if case.scale is None else float(case.scale)
        # logits_soft_cap: c * tanh(scale q.k / c), None for none
        feat = dict(logits_soft_cap=case.softcap if case.softcap > 0 else None)
        try:
            if decode and case.mask == "none" and all(int(x) == 1 for x in case.seqlen_q):
                # one query at the end of its sequence: only the window's left side matters
                w = fi.BatchDecodeWithPagedKVCacheWrapper(self._workspace(), "NHD")
                indptr, indices, last = self._pages(case)
                w.plan(indptr, indices, last, case.heads_q, case.heads_kv, case.head_dim, case.block_size,
                       sm_scale=scale, q_data_type=dt, kv_data_type=dt, window_left=case.window_left, **feat)
                return w.run(q, self._cache(case), return_lse=True)
            mask, causal, feat["window_left"] = self._masks(case)
            qo = self._on_device(np.concatenate([[0], np.cumsum(case.seqlen_q)]), np.int32)
            if case.paged:
                w = fi.BatchPrefillWithPagedKVCacheWrapper(self._workspace(), "NHD")
                indptr, indices, last = self._pages(case)
                w.plan(qo, indptr, indices, last, case.heads_q, case.heads_kv, case.head_dim, case.block_size,
                       custom_mask=mask, causal=causal, sm_scale=scale, q_data_type=dt, kv_data_type=dt, **feat)
                return w.run(q, self._cache(case), return_lse=True)
            w = fi.BatchPrefillWithRaggedKVCacheWrapper(self._workspace(), "NHD")
            kv = self._on_device(np.concatenate([[0], np.cumsum(case.seqlen_k)]), np.int32)
            w.plan(qo, kv, case.heads_q, case.heads_kv, case.head_dim, custom_mask=mask, causal=causal,
                   sm_scale=scale, q_data_type=dt, kv_data_type=dt, **feat)
            return w.run(q, case.torch("k", self.device), case.torch("v", self.device), return_lse=True)
        except (RuntimeError, ValueError, NotImplementedError) as e:
            raise self._refused(e) or e

    def prefill(self, case):
        return self._attention(case, decode=False)

    def decode(self, case):
        return self._attention(case, decode=True)

    def combine(self, case):
        """merge_states over the splits: v [rows, S, 1, D], s [rows, S, 1], base 2."""
        fi = self._fi()
        lse = self._on_device(case.lse_part, np.float32)
        o = self._on_device(case.o_part, np.float32)
        merge = getattr(fi, "merge_states", None) or fi.cascade.merge_states
        try:
            v, s = merge(o.unsqueeze(2).contiguous(), lse.unsqueeze(2).contiguous())
        except (RuntimeError, ValueError, NotImplementedError) as e:
            raise self._refused(e) or e
        return v[:, 0].float(), s[:, 0].float()


flashinfer = FlashInfer("flashinfer")


flex = Flex("flex")
flex_paged = Flex("flex_paged", paged_in_place=True)
# flex with GQA done by the adapter (K/V heads repeated): torch 2.11's Inductor finds no kernel for
# enable_gqa with a block mask in the prefill template (docs/BRIDGE.md), and this is the workaround
# a user would write; it judges the MHA kernel on GQA cases.
flex_gqa_expanded = Flex("flex_gqa_expanded", expand_gqa=True)
flex_eager = FlexEager("flex_eager")
flex_paged_eager = FlexEager("flex_paged_eager", paged_in_place=True)
flex_eager_gqa_expanded = FlexEager("flex_eager_gqa_expanded", expand_gqa=True)
# flex's LSE handed back in base 2 (as the kernel computes it) while natural is declared: must fail, and the
# diagnosis must say lse_base=2.
flex_misuse_lse_base2 = Flex("flex_misuse_lse_base2", report_base2=True)
