"""One attention call as one dump file: attncheck.dump, attncheck.load and
the checks both share. The format is the one `attncheck verify` reads
(python/README.md has the table): a safetensors file whose __metadata__ holds
one entry, "attncheck", a JSON object serialised as a string."""

import json
import math
import numbers
import os

import numpy as np

from . import _safetensors
from ._arrays import DumpError, bf16_to_float, to_array

FORMAT = "attncheck-dump"
VERSION = 1

# The metadata keys, in the order they are written, with their legal values
# (None: free text) and the value a file that omits the key means.
CHOICES = {
    "op": ("prefill", "decode", "combine", "store"),
    "causal": ("none", "TL", "BR"),
    "layout": ("NHD", "HND"),
    "kv_layout": ("NHD", "HND"),
    "lse_base": ("e", "2"),
    "lse_layout": ("TH", "HT"),
    "empty_row": ("zero_neginf", "zero_posinf", "nan", "zero_zero", "mean_v"),
    "combine_empty": ("guard", "flash_attn"),
    "mask": ("none", "bool", "additive"),
    "out_dtype": ("same", "float32"),
}
KEYS = ("format", "version", "op", "causal", "scale", "layout", "kv_layout", "lse_base",
        "lse_layout", "empty_row", "combine_empty", "mask", "library", "library_version",
        "note", "out_dtype")
DEFAULTS = {"causal": "none", "scale": "default", "layout": "NHD", "kv_layout": "NHD",
            "lse_base": "e", "lse_layout": "TH", "empty_row": "zero_neginf",
            "combine_empty": "guard", "mask": "none", "library": "", "library_version": "",
            "note": "", "out_dtype": "same"}
TEXT_KEYS = ("library", "library_version", "note")
# The features (docs/CONTRACT.md), prefill and decode only: keys written only when on,
# after the others, so a call without them is the same bytes as before.
FEATURE_KEYS = ("window_left", "window_right", "softcap")
FEATURE_DEFAULTS = {"window_left": -1, "window_right": -1, "softcap": 0.0}
FEATURE_TENSORS = ("alibi_slopes", "sinks")
# An FP8 K/V cache (kv-spec): K/V tensors of dtype F8_E4M3 or F8_E5M2 (one code a byte), their
# dequantisation scales float32 [] or [1] (per tensor) or [Hkv] (per KV head); no metadata key:
# the dtypes say it. D_v != D_qk: v (v_cache, v_new) and out have their own last dim.
FP8 = ("F8_E4M3", "F8_E5M2")
KV_FORMATS = {"e4m3": "F8_E4M3", "e5m2": "F8_E5M2"}
KV_TENSORS = ("k", "v", "k_cache", "v_cache", "k_cache_out", "v_cache_out")
SCALE_TENSORS = ("k_scale", "v_scale")

# Which tensors each op may hold.
TENSORS = {
    "prefill": ("q", "k", "v", "cu_seqlens_k", "k_cache", "v_cache", "block_table",
                "seqlens_k", "cu_seqlens_q", "mask", "out", "lse", "alibi_slopes", "sinks",
                "k_scale", "v_scale"),
    "decode": ("q", "k_cache", "v_cache", "block_table", "seqlens_k", "cu_seqlens_q",
               "mask", "out", "lse", "num_splits", "alibi_slopes", "sinks", "k_scale", "v_scale"),
    "combine": ("o_part", "lse_part", "out", "lse"),
    "store": ("k_new", "v_new", "slot_mapping", "k_cache", "v_cache", "k_cache_out",
              "v_cache_out", "k_scale", "v_scale"),
}
DATA = ("F16", "BF16")
INDEX = ("I32", "I64")
# Queries per sequence a decode call may have (the case model's bound).
MAX_QUERIES_DECODE = 8


def _fail(argument, message):
    raise DumpError(argument, message)


def check_scale(scale, argument="scale"):
    """The JSON value of a scale argument: "default" for None or "default",
    else the finite number as a float. 1.0 and 0.0 are explicit scales."""
    if scale is None or (isinstance(scale, str) and scale == "default"):
        return "default"
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        _fail(argument, "must be None, \"default\" or a number, got %r" % (scale,))
    value = float(scale)
    if not math.isfinite(value):
        _fail(argument, "must be finite, got %r" % (value,))
    return value


def _check_choice(key, value):
    if not isinstance(value, str) or value not in CHOICES[key]:
        _fail(key, "must be one of %s, got %r" % (", ".join(map(repr, CHOICES[key])), value))


def _shape_str(shape):
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


class _Check:
    """The structural checks of one call: tensor dtypes, ranks and sizes."""

    def __init__(self, meta, tensors):
        self.meta = meta
        self.t = tensors

    def has(self, name):
        return name in self.t

    def need(self, name, why=""):
        if name not in self.t:
            _fail(name, "required for op %s%s but missing" % (self.meta["op"], why))
        return self.t[name]

    def dtype(self, name, allowed):
        dt = self.t[name][0]
        if dt not in allowed:
            _fail(name, "dtype %s, expected %s" % (dt, " or ".join(allowed)))
        return dt

    def shape(self, name, dims, what):
        """dims: expected sizes, None where any size goes; what: the names."""
        arr = self.t[name][1]
        if arr.ndim != len(dims):
            _fail(name, "has %d dimensions %s, expected %d: %s"
                  % (arr.ndim, _shape_str(arr.shape), len(dims), what))
        for i, (got, want) in enumerate(zip(arr.shape, dims)):
            if want is not None and got != want:
                _fail(name, "dimension %d is %d, expected %d (%s, shape %s)"
                      % (i, got, want, what, _shape_str(arr.shape)))
        return tuple(int(d) for d in arr.shape)

    def kv_pair(self, k, v, dt):
        """The dtype of a K/V pair: both the data dtype dt, or both one FP8 dtype."""
        kd, vd = self.t[k][0], self.t[v][0]
        if kd != vd and (kd in FP8 or vd in FP8):
            _fail(v, "dtype %s while %s is %s: K and V share one format" % (vd, k, kd))
        kd = self.dtype(k, (dt,) + FP8)
        self.dtype(v, (kd,))
        return kd

    def kv_scales(self, kvdt, hkv):
        """k_scale and v_scale: both or neither, F32 [] / [1] / [Hkv], finite in [2^-64, 2^64],
        only with an FP8 cache."""
        given = [n for n in SCALE_TENSORS if self.has(n)]
        if not given:
            return
        if len(given) == 1:
            _fail("v_scale" if given[0] == "k_scale" else "k_scale",
                  "missing (%s is given: both scales or neither)" % given[0])
        if kvdt not in FP8:
            _fail("k_scale", "given with K/V in %s (scales go with F8_E4M3 / F8_E5M2 K/V only)" % kvdt)
        n = []
        for name in SCALE_TENSORS:
            self.dtype(name, ("F32",))
            arr = self.t[name][1]
            if not (arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] in (1, hkv))):
                _fail(name, "shape %s, expected [] or [1] (per tensor) or [Hkv = %d] (per KV head)"
                      % (_shape_str(arr.shape), hkv))
            vals = arr.reshape(-1).astype(np.float64)
            bad = np.nonzero(~((vals >= 2.0 ** -64) & (vals <= 2.0 ** 64)))[0]
            if bad.size:
                _fail(name, "entry %d is %r: must be finite, in [2^-64, 2^64]" % (bad[0], float(vals[bad[0]])))
            n.append(vals.size)
        if n[0] != n[1]:
            _fail("v_scale", "%d entries while k_scale has %d: both per tensor or both per KV head" % (n[1], n[0]))

    def cu_seqlens(self, name, total, batch):
        """Per-sequence lengths of cu_seqlens [B+1] over `total` rows; when
        the tensor is absent, one sequence of `total` (batch must be 1)."""
        if not self.has(name):
            if batch is not None and batch != 1:
                _fail(name, "required when there are %d sequences (only B = 1 may omit it)" % batch)
            return np.array([total], dtype=np.int64)
        self.dtype(name, INDEX)
        arr = self.t[name][1]
        if arr.ndim != 1 or arr.shape[0] < 2:
            _fail(name, "shape %s, expected [B+1] with B >= 1" % _shape_str(arr.shape))
        if batch is not None and arr.shape[0] != batch + 1:
            _fail(name, "dimension 0 is %d, expected B+1 = %d" % (arr.shape[0], batch + 1))
        cu = arr.astype(np.int64)
        if cu[0] != 0:
            _fail(name, "entry 0 is %d, expected 0" % cu[0])
        steps = np.diff(cu)
        bad = np.nonzero(steps < 0)[0]
        if bad.size:
            i = int(bad[0]) + 1
            _fail(name, "entry %d (%d) is below entry %d (%d): must not decrease"
                  % (i, cu[i], i - 1, cu[i - 1]))
        if cu[-1] != total:
            _fail(name, "last entry is %d, expected the total row count %d" % (cu[-1], total))
        return steps

    def attention(self):
        """prefill and decode."""
        m = self.meta
        op = m["op"]
        nhd = m["layout"] == "NHD"
        self.need("q")
        dt = self.dtype("q", DATA)
        total_q, hq, d = self.shape("q", (None, None, None),
                                    "[total_q, Hq, D] (layout NHD)" if nhd else "[Hq, total_q, D] (layout HND)")
        if not nhd:
            total_q, hq = hq, total_q
        if hq < 1 or d < 1:
            _fail("q", "needs at least one head and a head dim >= 1, shape %s" % _shape_str(self.t["q"][1].shape))

        contiguous = [n for n in ("k", "v", "cu_seqlens_k") if self.has(n)]
        paged = [n for n in ("k_cache", "v_cache", "block_table", "seqlens_k") if self.has(n)]
        if op == "decode" or paged:
            if contiguous:
                _fail(contiguous[0], "the keys are paged (%s given); contiguous %s does not belong"
                      % (", ".join(paged) or "decode", contiguous[0]))
            for n in ("k_cache", "v_cache", "block_table", "seqlens_k"):
                self.need(n, " (paged keys)")
            kv = "k_cache"
            knhd = m["kv_layout"] == "NHD"
            what = ("[num_blocks, block_size, Hkv, D] (kv_layout NHD)" if knhd
                    else "[num_blocks, Hkv, block_size, D] (kv_layout HND)")
            kvdt = self.kv_pair("k_cache", "v_cache", dt)
            shp = self.shape("k_cache", (None, None, None, d), what)
            hkv = shp[2] if knhd else shp[1]
            dv = self.shape("v_cache", shp[:3] + (None,), what + ", as k_cache but D_v")[3]
            self.dtype("block_table", INDEX)
            batch, _ = self.shape("block_table", (None, None), "[B, max_blocks_per_seq]")
            self.dtype("seqlens_k", INDEX)
            self.shape("seqlens_k", (batch,), "[B], B from block_table")
            lk = self.t["seqlens_k"][1].astype(np.int64)
            neg = np.nonzero(lk < 0)[0]
            if neg.size:
                _fail("seqlens_k", "entry %d is %d, must be >= 0" % (neg[0], lk[neg[0]]))
        else:
            for n in ("k", "v"):
                self.need(n, " (contiguous keys; or give k_cache, v_cache, block_table, seqlens_k)")
            kv = "k"
            what = "[total_k, Hkv, D] (layout NHD)" if nhd else "[Hkv, total_k, D] (layout HND)"
            kvdt = self.kv_pair("k", "v", dt)
            shp = self.shape("k", (None, None, d), what)
            total_k, hkv = (shp[0], shp[1]) if nhd else (shp[1], shp[0])
            dv = self.shape("v", shp[:2] + (None,), what + ", as k but D_v")[2]
            batch = None
            for n in ("cu_seqlens_k", "cu_seqlens_q"):
                if self.has(n):
                    batch = self.t[n][1].shape[0] - 1 if self.t[n][1].ndim == 1 else None
                    break
            lk = self.cu_seqlens("cu_seqlens_k", total_k, batch)
            batch = lk.shape[0]
        if hkv < 1 or hq % hkv:
            _fail(kv, "Hkv = %d does not divide Hq = %d" % (hkv, hq))
        if dv < 1:
            _fail("v_cache" if kv == "k_cache" else "v", "needs a head dim D_v >= 1")
        self.kv_scales(kvdt, hkv)
        lq = self.cu_seqlens("cu_seqlens_q", total_q, batch)
        if op == "decode":
            bad = np.nonzero((lq < 1) | (lq > MAX_QUERIES_DECODE))[0]
            if bad.size:
                _fail("cu_seqlens_q", "sequence %d has %d queries; a decode call has 1..%d per sequence"
                      % (bad[0], lq[bad[0]], MAX_QUERIES_DECODE))

        self.need("out")
        odt = self.dtype("out", (dt, "F32"))
        self.shape("out", self.t["q"][1].shape[:2] + (dv,), "as q but D_v, v's last dim")
        m["out_dtype"] = "float32" if odt == "F32" and dt != "F32" else "same"
        if self.has("lse"):
            self.dtype("lse", ("F32",))
            self.shape("lse", (total_q, hq) if m["lse_layout"] == "TH" else (hq, total_q),
                       "[total_q, Hq] (lse_layout TH)" if m["lse_layout"] == "TH"
                       else "[Hq, total_q] (lse_layout HT)")
        if self.has("mask"):
            mdt = self.dtype("mask", ("BOOL", "U8", "F32"))
            cols = int(np.sum(lq * lk))
            arr = self.t["mask"][1]
            self.shape("mask", (None, cols), "[Hm, sum_b Lq_b*Lk_b], Hm = Hq or 1")
            if arr.shape[0] not in (1, hq):
                _fail("mask", "dimension 0 is %d, expected 1 or Hq = %d" % (arr.shape[0], hq))
            if mdt == "U8" and arr.size and arr.max() > 1:
                _fail("mask", "a uint8 mask holds 0 or 1, found %d" % arr.max())
            m["mask"] = "additive" if mdt == "F32" else "bool"
        else:
            m["mask"] = "none"
        for name in FEATURE_TENSORS:
            if not self.has(name):
                continue
            self.dtype(name, ("F32",))
            self.shape(name, (hq,), "[Hq]")
            arr = self.t[name][1].astype(np.float64)
            bad = np.nonzero(~np.isfinite(arr) if name == "alibi_slopes" else (np.isnan(arr) | (arr == np.inf)))[0]
            if bad.size:
                _fail(name, "entry %d is %r: %s" % (bad[0], float(arr[bad[0]]), "must be finite"
                                                    if name == "alibi_slopes" else "must be finite or -inf"))
        if self.has("num_splits"):
            self.dtype("num_splits", ("I32",))
            arr = self.t["num_splits"][1]
            if arr.shape not in ((), (1,)):
                _fail("num_splits", "has %d dimensions %s, expected a scalar ([] or [1])"
                      % (arr.ndim, _shape_str(arr.shape)))
            if int(arr.reshape(())) < 0:
                _fail("num_splits", "is %d, must be >= 0 (0 = automatic)" % int(arr.reshape(())))

    def combine(self):
        m = self.meta
        self.need("o_part")
        self.dtype("o_part", ("F32",))
        rows, splits, d = self.shape("o_part", (None, None, None), "[rows, S, D]")
        if splits < 1 or d < 1:
            _fail("o_part", "needs S >= 1 splits and D >= 1, shape %s" % _shape_str((rows, splits, d)))
        self.need("lse_part")
        self.dtype("lse_part", ("F32",))
        self.shape("lse_part", (rows, splits), "[rows, S] as o_part")
        self.need("out")
        odt = self.dtype("out", ("F16", "BF16", "F32"))
        self.shape("out", (rows, d), "[rows, D] as o_part")
        m["out_dtype"] = "float32" if odt == "F32" else "same"
        if self.has("lse"):
            self.dtype("lse", ("F32",))
            self.shape("lse", (rows,), "[rows] as o_part")
        m["mask"] = "none"

    def store(self):
        m = self.meta
        if m["layout"] != "NHD":
            _fail("layout", "a store's k_new, v_new are [T, Hkv, D]: layout must be \"NHD\"")
        for n in ("k_new", "v_new", "slot_mapping", "k_cache", "v_cache", "k_cache_out", "v_cache_out"):
            self.need(n)
        dt = self.dtype("k_new", DATA)
        tokens, hkv, d = self.shape("k_new", (None, None, None), "[T, Hkv, D]")
        self.dtype("v_new", (dt,))
        dv = self.shape("v_new", (tokens, hkv, None), "[T, Hkv, D_v] as k_new but D_v")[2]
        self.dtype("slot_mapping", INDEX)
        self.shape("slot_mapping", (tokens,), "[T], T from k_new")
        knhd = m["kv_layout"] == "NHD"
        what = ("[num_blocks, block_size, Hkv, D] (kv_layout NHD)" if knhd
                else "[num_blocks, Hkv, block_size, D] (kv_layout HND)")
        kvdt = self.kv_pair("k_cache", "v_cache", dt)
        shp = self.shape("k_cache", (None, None, hkv, d) if knhd else (None, hkv, None, d), what)
        vshp = self.shape("v_cache", shp[:3] + (dv,), what + ", as k_cache but D_v from v_new")
        for n, want in (("k_cache_out", shp), ("v_cache_out", vshp)):
            self.dtype(n, (kvdt,))
            self.shape(n, want, what + ", as its input cache")
        self.kv_scales(kvdt, hkv)
        m["out_dtype"] = "same"
        m["mask"] = "none"


def check_features(meta):
    """The window sides (integers >= -1) and softcap (finite, >= 0) of meta, as ints and a
    float; none of them on a combine or a store."""
    for key in FEATURE_KEYS:
        if key not in meta:
            continue
        value = meta[key]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            _fail(key, "must be a number, got %r" % (value,))
        if key == "softcap":
            if not math.isfinite(float(value)) or value < 0:
                _fail(key, "must be finite and >= 0 (0 = none), got %r" % (value,))
            meta[key] = float(value)
        else:
            if value != int(value) or value < -1 or value >= 2 ** 31:
                _fail(key, "must be an integer >= -1 (-1 = unbounded), got %r" % (value,))
            meta[key] = int(value)
        if meta["op"] in ("combine", "store") and meta[key] != FEATURE_DEFAULTS[key]:
            _fail(key, "a %s takes no window, softcap, ALiBi or sinks" % meta["op"])


def check(meta, tensors):
    """Check a call (metadata dict with every key, {name: (dtype, array)}) and
    fill in the derived keys "mask" and "out_dtype". Raises DumpError."""
    for key in ("op", "causal", "layout", "kv_layout", "lse_base", "lse_layout",
                "empty_row", "combine_empty"):
        _check_choice(key, meta[key])
    meta["scale"] = check_scale(meta["scale"])
    for key in TEXT_KEYS:
        if not isinstance(meta[key], str):
            _fail(key, "must be a string, got %r" % (meta[key],))
    op = meta["op"]
    check_features(meta)
    for name in tensors:
        if name not in TENSORS[op]:
            _fail(name, "is not a tensor of op %s (it has %s)" % (op, ", ".join(TENSORS[op])))
    c = _Check(meta, tensors)
    if op in ("prefill", "decode"):
        c.attention()
    elif op == "combine":
        c.combine()
    else:
        c.store()
    return meta


def _metadata_string(meta):
    ordered = {"format": FORMAT, "version": VERSION}
    for key in KEYS[2:]:
        ordered[key] = meta[key]
    for key in FEATURE_KEYS:
        if meta.get(key, FEATURE_DEFAULTS[key]) != FEATURE_DEFAULTS[key]:
            ordered[key] = meta[key]
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _write(path, tensors, metadata, writer):
    has_bf16 = any(dt == "BF16" for dt, _ in tensors.values())
    if writer == "auto":
        writer = "own"
        if not has_bf16:
            try:
                import safetensors.numpy  # noqa: F401 (optional)
                writer = "safetensors"
            except ImportError:
                pass
    if writer == "safetensors":
        if has_bf16:
            raise DumpError("writer", "safetensors.numpy cannot write BF16 (numpy has no bf16 dtype)")
        import safetensors.numpy
        arrays = {n: np.asarray(a.astype(_safetensors.NUMPY_OF[dt], copy=False), order="C")
                  for n, (dt, a) in tensors.items()}
        safetensors.numpy.save_file(arrays, os.fspath(path), metadata=metadata)
    elif writer == "own":
        _safetensors.write_file(path, tensors, metadata)
    else:
        raise DumpError("writer", "must be \"auto\", \"own\" or \"safetensors\", got %r" % (writer,))


def dump(path, *, op, q=None, k=None, v=None, k_cache=None, v_cache=None, block_table=None,
         seqlens_k=None, cu_seqlens_q=None, cu_seqlens_k=None, slot_mapping=None, k_new=None,
         v_new=None, mask=None, out=None, lse=None, o_part=None, lse_part=None,
         k_cache_out=None, v_cache_out=None, num_splits=None, causal="none", scale="default",
         layout="NHD", kv_layout="NHD", lse_base="e", lse_layout="TH", empty_row="zero_neginf",
         combine_empty="guard", library="", library_version="", note="", window_left=-1, window_right=-1,
         softcap=0.0, alibi_slopes=None, sinks=None, kv_format=None, k_scale=None, v_scale=None,
         writer="auto"):
    """Write one attention call to `path` (a .safetensors dump file).

    Tensors are numpy arrays, torch tensors (bf16 kept bit for bit) or
    attncheck.BF16 bit patterns. scale=None or "default" means 1/sqrt(D);
    any number (1.0 and 0.0 included) is an explicit scale. The features
    (prefill and decode): window_left / window_right (-1 = unbounded side,
    bottom-right aligned), softcap (0 = none), alibi_slopes and sinks (float32
    [Hq]; a sink may be -inf). An FP8 K/V cache: k/v (k_cache, v_cache, and a
    store's outputs) as torch float8_e4m3fn / float8_e5m2 tensors, or as uint8
    codes with kv_format="e4m3" / "e5m2"; k_scale, v_scale (both or neither) a
    number or float32 [1] (per tensor) or [Hkv] (per KV head). v and out may
    have their own last dim D_v (MLA). An additive mask
    given as float16/bf16 is widened to float32 (exactly). The keys "mask" and
    "out_dtype" of the metadata follow from the tensors. Every violation raises
    DumpError naming the argument (and the dimension or index).
    Returns the metadata dict written.
    """
    if not isinstance(op, str) or op not in CHOICES["op"]:
        _fail("op", "must be one of %s, got %r" % (", ".join(map(repr, CHOICES["op"])), op))
    given = {"q": q, "k": k, "v": v, "k_cache": k_cache, "v_cache": v_cache,
             "block_table": block_table, "seqlens_k": seqlens_k, "cu_seqlens_q": cu_seqlens_q,
             "cu_seqlens_k": cu_seqlens_k, "slot_mapping": slot_mapping, "k_new": k_new,
             "v_new": v_new, "mask": mask, "out": out, "lse": lse, "o_part": o_part,
             "lse_part": lse_part, "k_cache_out": k_cache_out, "v_cache_out": v_cache_out,
             "alibi_slopes": alibi_slopes, "sinks": sinks, "k_scale": k_scale, "v_scale": v_scale}
    if kv_format is not None and kv_format not in KV_FORMATS:
        _fail("kv_format", "must be None, \"e4m3\" or \"e5m2\", got %r" % (kv_format,))
    tensors = {}
    for name, value in given.items():
        if value is None:
            continue
        if name in FEATURE_TENSORS + SCALE_TENSORS and not hasattr(value, "dtype"):
            value = np.asarray(value, dtype=np.float64)  # a number or a list of numbers
        dt, arr = to_array(name, value)
        if name in KV_TENSORS and kv_format is not None:
            want = KV_FORMATS[kv_format]
            if dt == "U8":  # codes of the format the caller names
                dt = want
            elif dt in FP8 and dt != want:
                _fail(name, "dtype %s, but kv_format is %r (%s)" % (dt, kv_format, want))
            elif dt not in FP8:
                _fail(name, "dtype %s: kv_format %r wants uint8 codes or torch float8" % (dt, kv_format))
        if name in FEATURE_TENSORS + SCALE_TENSORS and arr.dtype == np.float64:
            # float32 is what kernels take; a value it does not hold exactly would be another call
            narrow = arr.astype(np.float32)
            with np.errstate(invalid="ignore"):
                inexact = (narrow.astype(np.float64) != arr) & ~np.isnan(arr)
            if np.any(inexact):
                flat, bad = arr.reshape(-1), inexact.reshape(-1)  # a scale may be a scalar
                _fail(name, "entry %d (%r) is not a float32 value" % (np.nonzero(bad)[0][0], float(flat[bad][0])))
            dt, arr = "F32", narrow
        if name == "mask" and dt in ("F16", "BF16"):
            # A bias in the data dtype (SDPA takes one): float32 holds it exactly.
            arr = bf16_to_float(arr) if dt == "BF16" else arr.astype(np.float32)
            dt = "F32"
        tensors[name] = (dt, arr)
    if num_splits is not None:
        if isinstance(num_splits, (bool, np.bool_)):
            _fail("num_splits", "must be an integer, got %r" % (num_splits,))
        if isinstance(num_splits, numbers.Integral):
            if not 0 <= int(num_splits) < 2 ** 31:
                _fail("num_splits", "is %d, must be in 0 .. 2^31-1 (0 = automatic)" % int(num_splits))
            tensors["num_splits"] = ("I32", np.array(int(num_splits), dtype=np.int32))
        else:
            tensors["num_splits"] = to_array("num_splits", num_splits)
    meta = {"op": op, "causal": causal, "scale": scale, "layout": layout,
            "kv_layout": kv_layout, "lse_base": lse_base, "lse_layout": lse_layout,
            "empty_row": empty_row, "combine_empty": combine_empty, "mask": "none",
            "library": library, "library_version": library_version, "note": note,
            "out_dtype": "same", "window_left": window_left, "window_right": window_right,
            "softcap": softcap}
    check(meta, tensors)
    meta_out = {"format": FORMAT, "version": VERSION}
    meta_out.update((key, meta[key]) for key in KEYS[2:])
    meta_out.update((key, meta[key]) for key in FEATURE_KEYS if meta.get(key, FEATURE_DEFAULTS[key])
                    != FEATURE_DEFAULTS[key])
    _write(path, tensors, {"attncheck": _metadata_string(meta)}, writer)
    return meta_out


def parse_metadata(text):
    """The attncheck metadata dict of a file's "attncheck" string, every key
    present (omitted ones take their defaults). Raises DumpError naming the key."""
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise DumpError("attncheck", "metadata is not JSON: %s" % e) from None
    if not isinstance(obj, dict):
        raise DumpError("attncheck", "metadata is not a JSON object")
    for key in obj:
        if key not in KEYS and key not in FEATURE_KEYS:
            _fail(key, "unknown metadata key (known: %s)" % ", ".join(KEYS + FEATURE_KEYS))
    if obj.get("format") != FORMAT:
        _fail("format", "must be %r, got %r" % (FORMAT, obj.get("format")))
    if obj.get("version") != VERSION or isinstance(obj.get("version"), bool):
        _fail("version", "must be %d, got %r" % (VERSION, obj.get("version")))
    if "op" not in obj:
        _fail("op", "missing")
    meta = {"format": FORMAT, "version": VERSION, "op": obj["op"]}
    for key in KEYS[3:]:
        meta[key] = obj.get(key, DEFAULTS[key])
    for key in FEATURE_KEYS:  # only when the file says them, as dump() returns them
        if key in obj:
            meta[key] = obj[key]
    for key in ("mask", "out_dtype"):  # derived when writing, so only checked here
        _check_choice(key, meta[key])
    if isinstance(meta["scale"], str) and meta["scale"] != "default":
        _fail("scale", "must be \"default\" or a number, got %r" % meta["scale"])
    return meta


def load(path, *, bf16="bits", check_call=True):
    """(metadata dict, {name: numpy array}) of a dump file.

    bf16="bits" gives bf16 tensors as uint16 bit patterns, bf16="float32" as
    their exact float32 values. check_call=True runs the same checks as dump
    and verifies the stored "mask" and "out_dtype" keys against the tensors."""
    if bf16 not in ("bits", "float32"):
        _fail("bf16", "must be \"bits\" or \"float32\", got %r" % (bf16,))
    raw_meta, tensors = _safetensors.read_file(path)
    if not raw_meta or "attncheck" not in raw_meta:
        raise DumpError("attncheck", "%s has no \"attncheck\" entry in __metadata__" % os.fspath(path))
    meta = parse_metadata(raw_meta["attncheck"])
    if check_call:
        derived = dict(meta)
        check(derived, tensors)
        for key in ("mask", "out_dtype"):
            if key == "out_dtype" and meta["op"] == "combine":
                continue  # a combine's out dtype speaks for itself (F32, or the data dtype)
            if derived[key] != meta[key]:
                _fail(key, "says %r but the tensors make it %r" % (meta[key], derived[key]))
    arrays = {}
    for name, (dt, arr) in tensors.items():
        arrays[name] = bf16_to_float(arr) if (dt == "BF16" and bf16 == "float32") else arr
    return meta, arrays


def tensor_dtypes(path):
    """{name: safetensors dtype} of a dump file (tells bf16 bit patterns from
    other uint16 data)."""
    _, tensors = _safetensors.read_file(path)
    return {name: dt for name, (dt, _) in tensors.items()}
