"""The worker of attncheck's Python bridge (`attncheck ... --kernel py:MODULE:ADAPTER`).

attncheck starts `python3 -m attncheck.bridge MODULE:ADAPTER` once and sends it
every case of a sweep, a property law or a fuzz walk: the tensors in a shared
mapped file, a JSON line per request and per answer on two pipes (fd numbers in
$ATTNCHECK_BRIDGE_FDS). This module loads the adapter, answers with its families
and conventions, then runs each case through it and writes the outputs back.
docs/BRIDGE.md says how to write an adapter; attncheck.adapters has examples.

An adapter is any object (a class is instantiated once) with
  name           a short name (the backend is reported as py:NAME)
  families       the families it runs, a subset of {"prefill", "decode", "combine", "store"}
                 (default: those it has a method for)
  prefill(case), decode(case), combine(case), store(case)
  lse            True if it returns an LSE (default True)
  lse_base       "e" or "2": the base of every LSE in and out (default "e")
  empty_row      what a row with no allowed key holds: "zero_neginf" (the contract),
                 "zero_posinf", "nan", "zero_zero", "mean_v" (default "zero_neginf")
  combine_empty  "guard" or "flash_attn" (default "guard")
  features       {family: [features]}: which of "window", "softcap", "alibi", "sinks" it
                 implements for prefill and decode, and of "fp8kv" (an FP8 K/V cache with
                 its scales) and "dv" (D_v != D_qk) for prefill, decode and store (default:
                 none; a case using another one is reported unsupported by the kernel,
                 never run)
An FP8 cache arrives as uint8 codes (case.kv_format "e4m3" or "e5m2"; case.torch(name) gives
a torch float8 tensor) with case.k_scales / case.v_scales (float32 [1] or [Hkv], or None);
v and out have case.head_dim_v columns.
An attention method returns O [total_q, Hq, D_v] (the case's dtype, or any float dtype:
rounded to it once) or (O, LSE [total_q, Hq]); combine returns (O [rows, D] fp32, LSE
[rows]); store returns the caches after the store (k_cache, v_cache: uint16 bit
patterns, or torch tensors of the dtype; with an FP8 cache uint8 codes or torch float8). numpy arrays or torch tensors. A case the adapter cannot express raises Unsupported("why").
"""

import json
import mmap
import os
import signal
import sys
import time
import traceback

import numpy as np

PROTOCOL = 1
FAMILIES = ("prefill", "decode", "combine", "store")
EMPTY_RULES = ("zero_neginf", "zero_posinf", "nan", "zero_zero", "mean_v")
FEATURES = ("window", "softcap", "alibi", "sinks", "fp8kv", "dv")
LOGIT_FEATURES = FEATURES[:4]
KV_FEATURES = FEATURES[4:]
FEATURE_FAMILIES = ("prefill", "decode")  # the logit features; combine and store take none
KV_FEATURE_FAMILIES = ("prefill", "decode", "store")  # an FP8 cache, D_v: combine takes neither
KV_FORMATS = ("e4m3", "e5m2")
COMBINE_EMPTY = ("guard", "flash_attn")
_NP = {"bf16": np.uint16, "fp16": np.uint16, "f32": np.float32, "i32": np.int32, "i64": np.int64, "u8": np.uint8,
       "e4m3": np.uint8, "e5m2": np.uint8}


class Unsupported(Exception):
    """Raised by an adapter for a case it cannot express (a mask its kernel does
    not take, a head dim, a dtype). attncheck reports the case as unsupported
    with this reason and counts it apart: never as passed."""


# ---- half formats ---------------------------------------------------------------------------

def half_to_float(bits, dtype):
    """The exact values of bf16/fp16 bit patterns (uint16) as float64."""
    bits = np.asarray(bits, dtype=np.uint16)
    if dtype == "fp16":
        return bits.view(np.float16).astype(np.float64)
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def float_to_half(x, dtype):
    """Round float values (any float dtype) once to bf16/fp16, nearest-even,
    and return the bit patterns (uint16). NaN stays NaN, overflow is Inf."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).view(np.uint16)  # numpy rounds double -> half directly
    # bf16: 8 significant bits; the quantum of x is 2^(e-8) (frexp's e), never
    # below the subnormal quantum 2^-133. x / quantum is exact, rint rounds to
    # even, and the result is a bf16 value, exact in float32.
    with np.errstate(over="ignore", invalid="ignore"):
        _, e = np.frexp(x)
        q = np.ldexp(1.0, np.maximum(e, -125) - 8)
        r = np.where(np.isfinite(x), np.rint(x / q) * q, x).astype(np.float32)
    return (r.view(np.uint32) >> 16).astype(np.uint16)


def _fp8_table(fmt):
    """The 256 values of an FP8 format's codes, float64. E4M3 is OCP E4M3FN (torch
    float8_e4m3fn: no Inf, S.1111.111 NaN, largest 448); E5M2 is the high byte of an
    IEEE fp16 (Inf, NaN, largest 57344)."""
    codes = np.arange(256, dtype=np.uint16)
    if fmt == "e5m2":
        return (codes << 8).view(np.float16).astype(np.float64)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    e = (codes >> 3) & 0xF
    m = (codes & 7).astype(np.float64)
    val = np.where(e == 0, np.ldexp(m / 8.0, -6), np.ldexp(1.0 + m / 8.0, e.astype(np.int64) - 7))
    val = sign * val
    val[(codes & 0x7F) == 0x7F] = np.nan
    return val


_FP8_TABLES = {}


def fp8_to_float(codes, fmt):
    """The exact values of FP8 codes (uint8) of format "e4m3" or "e5m2", as float64."""
    if fmt not in KV_FORMATS:
        raise ValueError("kv_format must be e4m3 or e5m2, got %r" % (fmt,))
    if fmt not in _FP8_TABLES:
        _FP8_TABLES[fmt] = _fp8_table(fmt)
    return _FP8_TABLES[fmt][np.asarray(codes, dtype=np.uint8)]


def float_to_fp8(x, fmt, scale=1.0):
    """The store's quantisation (kv-spec): code = RNE-saturating(fl32(x / scale)); NaN -> NaN
    (S.1111111 in both formats), +-Inf and values past the largest -> +-largest.
    x and scale are rounded to float32 first; the division is float32's."""
    x32 = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        y = (x32 / np.asarray(scale, dtype=np.float32)).astype(np.float64)
    table = fp8_to_float(np.arange(256), fmt)
    pos = np.arange(128)
    finite = pos[np.isfinite(table[:128])]
    vals = table[finite]  # increasing, 0 .. largest
    largest = vals[-1]
    a = np.minimum(np.abs(np.nan_to_num(y, nan=0.0, posinf=largest, neginf=-largest)), largest)
    hi = np.clip(np.searchsorted(vals, a, side="left"), 0, len(vals) - 1)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = a - vals[lo], vals[hi] - a
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (finite[hi] % 2 == 0))
    code = np.where(vals[hi] == a, finite[hi], np.where(pick_hi, finite[hi], finite[lo])).astype(np.uint8)
    code = np.where(np.signbit(y), code | 0x80, code).astype(np.uint8)
    nan = 0x7F  # S.1111111: NaN in both formats
    return np.where(np.isnan(y), np.where(np.signbit(y), nan | 0x80, nan), code).astype(np.uint8)


# ---- a case ---------------------------------------------------------------------------------------

class Case:
    """One case as an adapter sees it: the fields of attncheck's case model
    (docs/CONTRACT.md) and its tensors as numpy arrays over the shared file
    (read-only, valid during the call only: copy what must outlive it). bf16 and
    fp16 tensors are uint16 bit patterns; `values(name)` gives their exact values,
    `torch(name)` a torch tensor of the right dtype."""

    def __init__(self, op, fields, arrays):
        self.op = op
        self.arrays = arrays
        self.line = fields["line"]
        self.dtype = fields["dtype"]
        self.batch = fields["batch"]
        self.heads_q = fields["heads_q"]
        self.heads_kv = fields["heads_kv"]
        self.head_dim = fields["head_dim"]
        self.scale = fields["scale"]            # None: the default 1/sqrt(D)
        self.causal = fields["causal"]          # "none", "TL", "BR"
        self.mask = fields["mask"]              # "none", "bool", "additive"
        self.mask_per_head = fields["mask_per_head"]
        self.paged = fields["paged"]
        self.block_size = fields["block_size"]
        self.num_blocks = fields["num_blocks"]
        self.max_blocks_per_seq = fields["max_blocks_per_seq"]
        self.num_splits = fields["num_splits"]
        self.num_tokens = fields["num_tokens"]
        self.slot_mapping_i64 = fields["slot_mapping_i64"]
        self.total_q = fields["total_q"]
        self.total_k = fields["total_k"]
        self.seqlen_q = fields.get("seqlen_q", [])
        self.seqlen_k = fields.get("seqlen_k", [])
        # Features (docs/CONTRACT.md): -1 = that window side unbounded, softcap 0 = none;
        # alibi_slopes and sinks float32 [Hq] arrays, or None when off (a sink may be -inf).
        self.window_left = int(fields.get("window_left", -1))
        self.window_right = int(fields.get("window_right", -1))
        self.softcap = float(fields.get("softcap", 0.0))
        self.alibi_slopes = arrays.get("alibi_slopes")
        self.sinks = arrays.get("sinks")
        # The K/V features (kv-spec): D_v (of v and out; head_dim is D_qk), the cache's format
        # ("dtype": the case dtype; "e4m3", "e5m2": uint8 codes) and its dequantisation scales
        # (float32 [1] per tensor or [Hkv] per KV head; None: 1).
        self.head_dim_v = int(fields.get("head_dim_v", self.head_dim) or self.head_dim)
        self.kv_format = fields.get("kv_format", "dtype")
        self.k_scales = arrays.get("k_scales")
        self.v_scales = arrays.get("v_scales")

    def __getattr__(self, name):  # case.q, case.k_cache, ...
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    def __repr__(self):
        return "Case(%s)" % self.line

    def fp8(self):
        """True if K/V hold FP8 codes."""
        return self.kv_format in KV_FORMATS

    def kv_scale(self, which, g):
        """The dequantisation scale ("k" or "v") of KV head g, float64 (1 without scales)."""
        s = self.k_scales if which == "k" else self.v_scales
        if s is None:
            return 1.0
        return float(s[0] if s.shape[0] == 1 else s[g])

    def kv_scales_per_head(self, which):
        """[Hkv] float64: the scales of every KV head (ones without scales)."""
        return np.array([self.kv_scale(which, g) for g in range(self.heads_kv)])

    def _kv_name(self, name):
        return name in ("k", "v", "k_cache", "v_cache", "k_cache_out", "v_cache_out")

    def dequant(self, name):
        """An FP8 K/V tensor's values, decode(code) * scale of its KV head (axis -2), float64;
        for K/V in the case dtype its exact values."""
        if not (self.fp8() and self._kv_name(name)):
            return self.values(name)
        which = "k" if name.startswith("k") else "v"
        return self.values(name) * self.kv_scales_per_head(which)[:, None]

    def scale_value(self):
        """The scale as a float64: the given one, or the real 1/sqrt(D)."""
        return float(self.scale) if self.scale is not None else 1.0 / np.sqrt(self.head_dim)

    def torch_dtype(self):
        import torch
        return torch.bfloat16 if self.dtype == "bf16" else torch.float16

    def values(self, name):
        """A tensor's exact values as float64 (bf16/fp16 decoded; FP8 codes decoded,
        unscaled: see dequant)."""
        a = self.arrays[name]
        if self.fp8() and self._kv_name(name):
            return fp8_to_float(a, self.kv_format)
        if a.dtype == np.uint16:
            return half_to_float(a, self.dtype)
        return a.astype(np.float64)

    def values_of(self, bits):
        """Bit patterns of the case's dtype (a slice of a tensor) as float64."""
        return half_to_float(bits, self.dtype)

    def torch(self, name, device="cuda"):
        """A tensor as torch: bf16/fp16 in the case's dtype, others as they are."""
        import torch
        a = np.ascontiguousarray(self.arrays[name])
        if self.fp8() and self._kv_name(name):  # FP8 codes as torch float8
            fdt = torch.float8_e4m3fn if self.kv_format == "e4m3" else torch.float8_e5m2
            return torch.from_numpy(a.copy()).view(fdt).to(device)
        if a.dtype == np.uint16:
            return torch.from_numpy(a.view(np.int16).copy()).view(self.torch_dtype()).to(device)
        if a.dtype == np.uint8:
            return torch.from_numpy(a.copy()).to(device=device, dtype=torch.bool)
        return torch.from_numpy(a.copy()).to(device)

    def q_rows(self, b):
        """The packed rows (tokens) of sequence b's queries: a slice."""
        cu = self.arrays["cu_seqlens_q"]
        return slice(int(cu[b]), int(cu[b + 1]))

    def kv_rows(self, b):
        """Where sequence b's keys are: token rows of k/v (contiguous), or the
        slots of the paged cache (block_table[b][p // bs] * bs + p % bs), as int64."""
        n = int(self.seqlen_k[b])
        if not self.paged:
            start = int(self.arrays["cu_seqlens_k"][b])
            return np.arange(start, start + n, dtype=np.int64)
        p = np.arange(n, dtype=np.int64)
        table = self.arrays["block_table"][b].astype(np.int64)
        return table[p // self.block_size] * self.block_size + p % self.block_size if n else p

    def kv(self, b, name):
        """Sequence b's keys ("k") or values ("v") as [Lk, Hkv, D] bit patterns (D_v for v;
        FP8 codes with an FP8 cache), gathered from the paged cache when the case is paged."""
        rows = self.kv_rows(b)
        if not self.paged:
            return self.arrays[name][rows]
        cache = self.arrays[name + "_cache"]
        return cache.reshape(-1, self.heads_kv, self.head_dim_v if name == "v" else self.head_dim)[rows]

    def kv_values(self, b, name):
        """Sequence b's keys or values as float64 [Lk, Hkv, D or D_v]: decode(code) * scale
        with an FP8 cache, the exact values otherwise."""
        x = self.kv(b, name)
        if not self.fp8():
            return half_to_float(x, self.dtype)
        return fp8_to_float(x, self.kv_format) * self.kv_scales_per_head(name)[:, None]

    def mask_block(self, b):
        """Sequence b's explicit mask [Hm, Lq, Lk] (Hm = Hq per head, else 1):
        bool (True = takes part) or the fp32 additive bias; None without a mask."""
        if self.mask == "none":
            return None
        off = self.arrays["mask_off"]
        hm = self.heads_q if self.mask_per_head else 1
        blk = self.arrays["mask"][int(off[b]):int(off[b + 1])].reshape(hm, self.seqlen_q[b], self.seqlen_k[b])
        return blk.astype(bool) if self.mask == "bool" else blk

    def causal_allowed(self, b):
        """[Lq, Lk] bool: the keys sequence b's queries see under the causal mode."""
        lq, lk = int(self.seqlen_q[b]), int(self.seqlen_k[b])
        i = np.arange(lq)[:, None]
        j = np.arange(lk)[None, :]
        if self.causal == "TL":
            return j <= i
        if self.causal == "BR":
            return j <= i + (lk - lq)
        return np.ones((lq, lk), dtype=bool)

    def has_window(self):
        return self.window_left >= 0 or self.window_right >= 0

    def features(self):
        """The features this case uses, as names ("window", "softcap", "alibi", "sinks",
        "fp8kv", "dv")."""
        on = (self.has_window(), self.softcap > 0, self.alibi_slopes is not None, self.sinks is not None,
              self.fp8(), self.head_dim_v != self.head_dim)
        return [f for f, o in zip(FEATURES, on) if o]

    def window_allowed(self, b):
        """[Lq, Lk] bool: the keys the window lets sequence b's queries see, aligned
        bottom-right like flash-attn's window_size: i + off - left <= j <= i + off + right,
        off = Lk - Lq (all True without a window)."""
        lq, lk = int(self.seqlen_q[b]), int(self.seqlen_k[b])
        d = np.arange(lk)[None, :] - (np.arange(lq)[:, None] + (lk - lq))  # j - i - off
        ok = np.ones((lq, lk), dtype=bool)
        if self.window_left >= 0:
            ok &= d >= -self.window_left
        if self.window_right >= 0:
            ok &= d <= self.window_right
        return ok

    def alibi_dist(self, b):
        """[Lq, Lk] float64: j - i - (Lk - Lq), the signed ALiBi distance (<= 0 where a
        bottom-right causal row looks)."""
        lq, lk = int(self.seqlen_q[b]), int(self.seqlen_k[b])
        return (np.arange(lk)[None, :] - (np.arange(lq)[:, None] + (lk - lq))).astype(np.float64)

    def allowed(self, b):
        """[Hm, Lq, Lk] bool: the causal mode, the window and the explicit mask together."""
        allowed = (self.causal_allowed(b) & self.window_allowed(b))[None]
        m = self.mask_block(b)
        if m is not None:
            allowed = allowed & (m if m.dtype == bool else m != -np.inf)
        return allowed

    def kv_head(self, h):
        """The KV head query head h reads: h / (Hq / Hkv) (contiguous groups)."""
        return h // (self.heads_q // self.heads_kv)


# ---- outputs --------------------------------------------------------------------------------------

def _as_numpy(x, what):
    """numpy from numpy or torch; a bf16/fp16 torch tensor as ('bits', uint16)."""
    mod = type(x).__module__ or ""
    if mod.startswith("torch"):
        import torch
        x = x.detach()
        if x.dtype in (getattr(torch, "float8_e4m3fn", None), getattr(torch, "float8_e5m2", None)):
            return "codes_" + ("e4m3" if x.dtype == torch.float8_e4m3fn else "e5m2"), \
                x.contiguous().view(torch.uint8).cpu().numpy()
        if x.dtype in (torch.bfloat16, torch.float16):
            return "bits_" + ("bf16" if x.dtype == torch.bfloat16 else "fp16"), \
                x.contiguous().view(torch.int16).cpu().numpy().view(np.uint16)
        return "value", x.cpu().numpy()
    a = np.asarray(x)
    if a.dtype == np.float16:
        return "bits_fp16", a.view(np.uint16)
    if a.dtype.kind not in "fiu":
        raise TypeError("%s: an array of numbers, got %s" % (what, a.dtype))
    return "value", a


def _check_shape(a, shape, what):
    if tuple(a.shape) != tuple(shape):
        raise ValueError("%s has shape %s, expected %s" % (what, list(a.shape), list(shape)))


def _write_half(dst, x, dtype, what, bits=False):
    kind, a = _as_numpy(x, what)
    _check_shape(a, dst.shape, what)
    if bits and a.dtype == np.uint16:  # a store's caches: bit patterns as they are
        dst[...] = a
    elif kind.startswith("bits_"):
        if kind[5:] != dtype:
            raise TypeError("%s is %s, the case is %s" % (what, kind[5:], dtype))
        dst[...] = a
    elif a.dtype.kind == "u" and a.dtype.itemsize == 2:
        raise TypeError("%s: uint16 is ambiguous; return floats or a torch bf16/fp16 tensor" % what)
    else:
        dst[...] = float_to_half(a, dtype)


def _write_codes(dst, x, fmt, what):
    """A store's FP8 cache: uint8 codes, or a torch float8 tensor of the case's format."""
    kind, a = _as_numpy(x, what)
    _check_shape(a, dst.shape, what)
    if kind.startswith("codes_"):
        if kind[6:] != fmt:
            raise TypeError("%s is %s, the cache is %s" % (what, kind[6:], fmt))
    elif a.dtype != np.uint8:
        raise TypeError("%s: an FP8 cache is returned as uint8 codes or torch float8, got %s" % (what, a.dtype))
    dst[...] = a


def _write_f32(dst, x, what):
    kind, a = _as_numpy(x, what)
    _check_shape(a, dst.shape, what)
    dst[...] = a.astype(np.float32) if kind == "value" else half_to_float(a, kind[5:]).astype(np.float32)


# ---- the worker -------------------------------------------------------------------------------------

def load_adapter(spec):
    """MODULE:ADAPTER -> the adapter object (a class is instantiated once)."""
    import importlib
    import inspect
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError("expected MODULE:ADAPTER, got %r" % spec)
    obj = getattr(importlib.import_module(module), attr)
    return obj() if inspect.isclass(obj) else obj


def conventions(adapter):
    """The adapter's declared families and conventions, checked."""
    fams = getattr(adapter, "families", None)
    if fams is None:
        fams = [f for f in FAMILIES if callable(getattr(adapter, f, None))]
    unknown = sorted(set(fams) - set(FAMILIES))
    if unknown:
        raise ValueError("families: %s is not a family (%s)" % (", ".join(unknown), ", ".join(FAMILIES)))
    fams = [f for f in FAMILIES if f in set(fams)]
    for f in fams:
        if not callable(getattr(adapter, f, None)):
            raise TypeError("the adapter lists %s but has no %s method" % (f, f))
    conv = {
        "name": str(getattr(adapter, "name", type(adapter).__name__)),
        "families": fams,
        "lse": bool(getattr(adapter, "lse", True)),
        "lse_base": str(getattr(adapter, "lse_base", "e")),
        "empty_row": str(getattr(adapter, "empty_row", "zero_neginf")),
        "combine_empty": str(getattr(adapter, "combine_empty", "guard")),
    }
    conv["features"] = _declared_features(adapter, fams)
    if conv["lse_base"] not in ("e", "2"):
        raise ValueError("lse_base must be 'e' or '2', got %r" % conv["lse_base"])
    if conv["empty_row"] not in EMPTY_RULES:
        raise ValueError("empty_row must be one of %s, got %r" % (", ".join(EMPTY_RULES), conv["empty_row"]))
    if conv["combine_empty"] not in COMBINE_EMPTY:
        raise ValueError("combine_empty must be guard or flash_attn, got %r" % conv["combine_empty"])
    return conv


def _declared_features(adapter, fams):
    """{family: [features]} from the adapter's `features` (a dict by family, or one
    list for every attention family it runs), checked."""
    decl = getattr(adapter, "features", None) or {}
    if isinstance(decl, (list, tuple, set, frozenset)):
        decl = {f: [x for x in decl if f in FEATURE_FAMILIES or x in KV_FEATURES]
                for f in fams if f in KV_FEATURE_FAMILIES}
    if not isinstance(decl, dict):
        raise TypeError("features must be {family: [features]} or a list, got %s" % type(decl).__name__)
    out = {}
    for fam, feats in decl.items():
        if fam not in fams:
            raise ValueError("features: %s is not a family the adapter runs (%s)" % (fam, ", ".join(fams)))
        feats = list(feats)
        unknown = sorted(set(feats) - set(FEATURES))
        if unknown:
            raise ValueError("features: %s is not a feature (%s)" % (", ".join(unknown), ", ".join(FEATURES)))
        for x in feats:
            if fam not in (KV_FEATURE_FAMILIES if x in KV_FEATURES else FEATURE_FAMILIES):
                raise ValueError("features: %s takes no %s" % (fam, x))
        if feats:
            out[fam] = [f for f in FEATURES if f in set(feats)]
    return out


class _Shared:
    """The shared file, mapped whole; remapped when attncheck grows it."""

    def __init__(self, fd):
        self.fd, self.mm, self.size = fd, None, 0

    def ensure(self, size):
        if self.mm is not None and size <= self.size:
            return
        if self.mm is not None:
            try:
                self.mm.close()
            except BufferError:  # a view outlived its case; the old mapping goes with it
                pass
        self.mm = mmap.mmap(self.fd, size)
        self.size = size

    def array(self, desc, writable):
        shape = [int(d) for d in desc["shape"]]
        dt = np.dtype(_NP[desc["dtype"]])
        count = int(np.prod(shape)) if shape else 1
        a = np.frombuffer(self.mm, dtype=dt, count=count, offset=int(desc["offset"])).reshape(shape)
        if not writable:
            a.flags.writeable = False
        return a


def run_case(adapter, conv, shared, req):
    op = req["op"]
    shared.ensure(int(req["shm_size"]))
    ins = {n: shared.array(d, False) for n, d in req["inputs"].items()}
    outs = {n: shared.array(d, True) for n, d in req["outputs"].items()}
    case = Case(op, req["case"], ins)
    # attncheck refuses a case with a feature the adapter did not declare before sending
    # it; this guards an adapter driven by another caller (a test, a script).
    lacking = sorted(set(case.features()) - set(conv.get("features", {}).get(op, [])))
    if lacking:
        raise Unsupported("the adapter does not implement %s for %s" % ("+".join(lacking), op))
    result = getattr(adapter, op)(case)
    got_lse = False
    if op == "store":
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError("store must return (k_cache, v_cache)")
        if case.fp8():
            _write_codes(outs["k_cache_out"], result[0], case.kv_format, "k_cache")
            _write_codes(outs["v_cache_out"], result[1], case.kv_format, "v_cache")
        else:
            _write_half(outs["k_cache_out"], result[0], case.dtype, "k_cache", bits=True)
            _write_half(outs["v_cache_out"], result[1], case.dtype, "v_cache", bits=True)
        return False
    o, lse = (result if isinstance(result, (tuple, list)) else (result, None))
    if lse is not None and not conv["lse"]:
        raise TypeError("the adapter declares lse = False but returned one")
    if lse is None and conv["lse"]:
        raise TypeError("the adapter declares lse = True but returned none")
    if op == "combine":
        kind, a = _as_numpy(o, "o")
        _check_shape(a, outs["o_f32"].shape, "o")
        if kind != "value":
            raise TypeError("combine must return fp32 (or wider) O, got %s" % kind[5:])
        outs["o_f32"][...] = a.astype(np.float32)
        outs["o"][...] = float_to_half(a, case.dtype)
    else:
        _write_half(outs["o"], o, case.dtype, "o")
    if lse is not None:
        _write_f32(outs["lse"], lse, "lse")
        got_lse = True
    return got_lse


def _send(fd, obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        print("usage: python -m attncheck.bridge MODULE:ADAPTER (started by attncheck --kernel py:MODULE:ADAPTER)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    fds = os.environ.get("ATTNCHECK_BRIDGE_FDS")
    if not fds:
        print("attncheck.bridge: no $ATTNCHECK_BRIDGE_FDS: run by attncheck --kernel py:%s" % argv[0],
              file=sys.stderr)
        return 2
    req_fd, resp_fd, shm_fd = (int(x) for x in fds.split(","))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # attncheck ends the worker itself
    try:
        adapter = load_adapter(argv[0])
        conv = conventions(adapter)
    except Exception as e:  # the message goes to attncheck, the traceback to the stderr tail
        traceback.print_exc()
        _send(resp_fd, {"error": "cannot load %s: %s: %s" % (argv[0], type(e).__name__, e)})
        return 1
    hello = dict(conv, hello="attncheck-bridge", protocol=PROTOCOL, package=os.path.dirname(__file__),
                 python=sys.version.split()[0])
    _send(resp_fd, hello)
    shared = _Shared(shm_fd)
    requests = os.fdopen(req_fd, "rb")
    for raw in requests:
        req = json.loads(raw)
        if req.get("cmd") == "quit":
            break
        answer = {"id": req["id"]}
        t0 = time.perf_counter()
        try:
            answer["lse"] = run_case(adapter, conv, shared, req)
            answer["status"] = "ok"
        except Unsupported as e:
            answer["status"] = "unsupported"
            answer["message"] = str(e) or type(e).__name__
        except Exception as e:
            traceback.print_exc()
            answer["status"] = "error"
            answer["message"] = "%s: %s" % (type(e).__name__, e)
        answer["seconds"] = time.perf_counter() - t0
        _send(resp_fd, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
