#!/usr/bin/python3
"""`attncheck verify` end to end, with numpy only (docs/DUMP.md, docs/DIAGNOSIS.md).

Writes dumps of attention calls as a library wrapper would (the safetensors
format written by hand, so no package beyond numpy is needed), with outputs
computed here in float64 from SEMANTICS.md, and checks:
  - correct calls pass (exit 0): contiguous and paged prefill, decode with the
    HND layouts and an [Hq, total_q] LSE, fp32 output, combine, store;
  - a call computed with a classic bug fails (exit 1) and the diagnosis names
    it: TOP_LEFT where BOTTOM_RIGHT is declared, scale 1.0 for the default,
    KV head h % Hkv, K and V swapped, a base-2 LSE declared natural, and on a
    paged cache a key read past seqlens_k, block-table entries one too high,
    the next slot read;
  - windows, softcap, ALiBi and sinks: correct calls pass; a top-left window, a
    window one key wider, ALiBi's sign flipped or flash-attn's -slope*|d|, softcap
    ignored or applied after the mask, sinks ignored are each named; malformed
    feature keys and tensors are named errors;
  - an FP8 K/V cache (E4M3/E5M2 codes, per-head or per-tensor k_scale/v_scale) and
    D_v != D_qk: correct calls pass and name no hypothesis; an output that never got
    v_scale is named v_scale_dropped, V read with row stride D_qk dv_read_as_dqk;
  - the empty rows' convention is reported (flash-attn's LSE = +inf);
  - malformed dumps exit 2 with the named error: truncated, bad JSON, a
    missing tensor, a wrong shape, a huge header length, a header length past
    the end, an unknown key;
  - a folder with --quiet and --junit: one testcase per file, named by its case line.
Usage: test_verify.py PATH_TO_ATTNCHECK
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python"))

ATTNCHECK = sys.argv[1] if len(sys.argv) > 1 else "attncheck"
FAILS = []
CHECKS = []


# ---- the safetensors format, by hand ------------------------------------------------

def write_dump(path, tensors, meta, raw_header=None):
    """tensors: list of (name, dtype, shape, bytes) in file order."""
    header, off, blobs = {}, 0, []
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    header["__metadata__"] = {"attncheck": json.dumps(meta)}
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bf16_bits(x):
    """float array -> bf16 bit patterns, round to nearest even (via fp32)."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


class Half:
    """Data of one storage dtype: random values exact in it, and encoding."""

    def __init__(self, name):
        self.name = name  # "F16" or "BF16"

    def random(self, rng, shape):
        x = rng.standard_normal(shape)
        return self.exact(x)

    def exact(self, x):
        if self.name == "F16":
            return np.asarray(x, dtype=np.float16).astype(np.float64)
        return bf16_value(bf16_bits(x))

    def encode(self, x):
        if self.name == "F16":
            return np.asarray(x, dtype=np.float16).tobytes()
        return bf16_bits(x).tobytes()


def f32(x):
    return np.asarray(x, dtype=np.float32).tobytes()


def i32(x):
    return np.asarray(x, dtype=np.int32).tobytes()


# ---- the contract, in float64 --------------------------------------------------------

def attention(q, k, v, cu_q, cu_k, causal, scale, kv_of):
    """q [Tq, Hq, D], k [Tk, Hkv, D], v [Tk, Hkv, D_v] contiguous; returns out [Tq, Hq, D_v], lse (natural)."""
    tq, hq, d = q.shape
    out = np.zeros((tq, hq, v.shape[2]))
    lse = np.full((tq, hq), -np.inf)
    for b in range(len(cu_q) - 1):
        q0, lq = cu_q[b], cu_q[b + 1] - cu_q[b]
        k0, lk = cu_k[b], cu_k[b + 1] - cu_k[b]
        for i in range(lq):
            end = lk if causal == "none" else i + 1 if causal == "TL" else i + 1 + lk - lq
            end = max(0, min(end, lk))
            if end == 0:
                continue
            for h in range(hq):
                kh = kv_of(h)
                s = scale * (k[k0:k0 + end, kh, :] @ q[q0 + i, h, :])
                m = s.max()
                p = np.exp(s - m)
                out[q0 + i, h] = (p[:, None] * v[k0:k0 + end, kh, :]).sum(0) / p.sum()
                lse[q0 + i, h] = m + math.log(p.sum())
    return out, lse


def meta(**kw):
    m = {"format": "attncheck-dump", "version": 1, "op": "prefill", "causal": "BR", "scale": "default",
         "layout": "NHD", "kv_layout": "NHD", "lse_base": "e", "lse_layout": "TH", "empty_row": "zero_neginf",
         "combine_empty": "guard", "mask": "none", "library": "numpy reference", "library_version": "1",
         "note": "tests/test_verify.py", "out_dtype": "same"}
    m.update(kw)
    return m


# ---- running verify -------------------------------------------------------------------

def verify(path, *extra):
    jpath = path + ".json"
    p = subprocess.run([ATTNCHECK, "verify", "--json", jpath, *extra, path], capture_output=True, text=True)
    try:
        with open(jpath) as f:
            rep = json.load(f)[0]
    except (OSError, ValueError, IndexError):
        rep = {}
    return p.returncode, p.stdout + p.stderr, rep


def check(name, ok, detail=""):
    CHECKS.append(name)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else "\n     " + detail.replace("\n", "\n     ")))
    if not ok:
        FAILS.append(name)


def expect_pass(name, path):
    rc, out, rep = verify(path)
    check(name + ": passes (exit 0)", rc == 0 and rep.get("status") == "pass", out[-3000:])


def expect_match(name, path, hypothesis):
    rc, out, rep = verify(path)
    match = (rep.get("diagnosis") or {}).get("match")
    check(name + ": fails (exit 1), diagnosis names " + hypothesis,
          rc == 1 and rep.get("status") == "fail" and match == hypothesis,
          "exit %d, match %r\n%s" % (rc, match, out[-3000:]))


def expect_error(name, path, words):
    rc, out, rep = verify(path)
    err = rep.get("error") or {}
    text = "%s: %s" % (err.get("code", ""), err.get("message", ""))
    check(name + ": exit 2 with " + " / ".join(words), rc == 2 and all(w in text and w in out for w in words),
          "exit %d, error %r\n%s" % (rc, text, out[-2000:]))


# ---- the dumps ------------------------------------------------------------------------

def prefill_dump(path, bug=None, half=Half("F16"), causal="BR", scale_decl="default", out_f32=False):
    rng = np.random.default_rng(7)
    hq, hkv, d = 4, 2, 64
    cu_q, cu_k = [0, 5, 8], [0, 9, 15]
    q = half.random(rng, (cu_q[-1], hq, d))
    k = half.random(rng, (cu_k[-1], hkv, d))
    v = half.random(rng, (cu_k[-1], hkv, d))
    scale = 1.0 / math.sqrt(d) if scale_decl == "default" else scale_decl
    kv_of = lambda h: h // (hq // hkv)
    c = causal
    if bug == "top_left":
        c = "TL"
    if bug == "scale_one":
        scale = 1.0
    if bug == "h_mod_hkv":
        kv_of = lambda h: h % hkv
    kk, vv = (v, k) if bug == "kv_swap" else (k, v)
    out, lse = attention(q, kk, vv, cu_q, cu_k, c, scale, kv_of)
    if bug == "lse_base2":
        lse = lse / math.log(2.0)
    out_bytes = f32(out) if out_f32 else half.encode(out)
    tensors = [("q", half.name, q.shape, half.encode(q)), ("k", half.name, k.shape, half.encode(k)),
               ("v", half.name, v.shape, half.encode(v)), ("cu_seqlens_q", "I32", (3,), i32(cu_q)),
               ("cu_seqlens_k", "I32", (3,), i32(cu_k)),
               ("out", "F32" if out_f32 else half.name, out.shape, out_bytes), ("lse", "F32", lse.shape, f32(lse))]
    write_dump(path, tensors, meta(causal=causal, scale=scale_decl, out_dtype="float32" if out_f32 else "same"))
    return tensors


# ---- the features (docs/CONTRACT.md: window, softcap, ALiBi, sinks) --------------------------------

FEATURES = dict(window_left=3, window_right=1, softcap=4.0, alibi=[0.5, 0.25, 0.125, 0.0625],
                sinks=[-math.inf, 0.0, -3.25, 2.0])


def feature_dump(path, bug=None, causal="none", half=Half("BF16"), lse_base2=False, empty_row="zero_neginf",
                 **over):
    """Contiguous prefill (Lq < Lk and Lq = Lk... sequences of 5/9 and 3/6) with the features of
    FEATURES (overridden by `over`; None = off), its outputs from the contract in float64
    (python/attncheck's numpy reference), or with one classic bug: window_top_left,
    window_left+1, alibi_sign, alibi_abs, softcap_ignored, softcap_after_mask, sinks_ignored."""
    from attncheck.adapters import attention_f64
    f = dict(FEATURES, **over)
    rng = np.random.default_rng(11)
    hq, hkv, d = 4, 2, 32
    cu_q, cu_k = [0, 5, 8], [0, 9, 15]
    q = half.random(rng, (cu_q[-1], hq, d)) * 2.0
    k = half.random(rng, (cu_k[-1], hkv, d))
    v = half.random(rng, (cu_k[-1], hkv, d))
    wl = -1 if f["window_left"] is None else f["window_left"]
    wr = -1 if f["window_right"] is None else f["window_right"]
    cap = f["softcap"] or 0.0
    slopes = None if f["alibi"] is None else np.asarray(f["alibi"], np.float32).astype(np.float64)
    sinks = None if f["sinks"] is None else np.asarray(f["sinks"], np.float64)
    out = np.zeros((cu_q[-1], hq, d))
    lse = np.full((cu_q[-1], hq), -np.inf)
    for b in range(2):
        lq, lk = cu_q[b + 1] - cu_q[b], cu_k[b + 1] - cu_k[b]
        i, j = np.arange(lq)[:, None], np.arange(lk)[None, :]
        dist = (j - i - (lk - lq)).astype(np.float64)
        diag = dist if bug != "window_top_left" else (j - i).astype(np.float64)
        ok = {"none": np.ones((lq, lk), bool), "TL": j <= i, "BR": dist <= 0}[causal]
        if wl >= 0:
            ok = ok & (diag >= -(wl + (bug == "window_left+1")))
        if wr >= 0:
            ok = ok & (diag <= wr)
        alibi = None
        if slopes is not None:
            alibi = np.asarray(np.float32(1) * slopes[:, None, None] * dist[None], np.float32).astype(np.float64)
            alibi = -alibi if bug == "alibi_sign" else -np.abs(alibi) if bug == "alibi_abs" else alibi
        o, l = attention_f64(q[cu_q[b]:cu_q[b + 1]], k[cu_k[b]:cu_k[b + 1]], v[cu_k[b]:cu_k[b + 1]], ok[None],
                             1.0 / math.sqrt(d), None, np.array([h // 2 for h in range(hq)]),
                             softcap=0.0 if bug == "softcap_ignored" else cap, alibi=alibi,
                             sinks=None if bug == "sinks_ignored" else sinks,
                             softcap_after_mask=bug == "softcap_after_mask")
        out[cu_q[b]:cu_q[b + 1]], lse[cu_q[b]:cu_q[b + 1]] = o, l
    if lse_base2:
        lse = lse / math.log(2.0)
    tensors = [("q", half.name, q.shape, half.encode(q)), ("k", half.name, k.shape, half.encode(k)),
               ("v", half.name, v.shape, half.encode(v)), ("cu_seqlens_q", "I32", (3,), i32(cu_q)),
               ("cu_seqlens_k", "I32", (3,), i32(cu_k)), ("out", half.name, out.shape, half.encode(out)),
               ("lse", "F32", lse.shape, f32(lse))]
    if slopes is not None:
        tensors.append(("alibi_slopes", "F32", (hq,), f32(slopes)))
    if sinks is not None:
        tensors.append(("sinks", "F32", (hq,), f32(sinks)))
    m = meta(causal=causal, lse_base="2" if lse_base2 else "e", empty_row=empty_row)
    if wl >= 0:
        m["window_left"] = wl
    if wr >= 0:
        m["window_right"] = wr
    if cap:
        m["softcap"] = cap
    write_dump(path, tensors, m)
    return tensors, m


def feature_checks(p):
    """Feature dumps: correct ones pass, each classic bug is named, malformed ones are named errors."""
    feature_dump(p("feat-all"))
    expect_pass("features: window (3, 1), softcap, ALiBi, sinks, no causal", p("feat-all"))
    feature_dump(p("feat-br"), causal="BR", window_right=None)
    expect_pass("features: bottom-right causal with a left window", p("feat-br"))
    feature_dump(p("feat-base2"), causal="BR", lse_base2=True, half=Half("F16"))
    expect_pass("features: fp16, a base-2 LSE declared", p("feat-base2"))
    feature_dump(p("feat-empty-sink"), window_left=0, window_right=0, causal="TL", alibi=None, softcap=None)
    expect_pass("features: keyless rows with a sink hold O = 0, LSE = sink", p("feat-empty-sink"))
    # a sink of 0 is the contract's LSE, not flash-attn-style zero_zero's "empty" LSE: never remapped
    feature_dump(p("feat-sink-zero"), window_left=0, window_right=0, causal="TL", alibi=None, softcap=None,
                 sinks=[0.0, 0.0, 1.0, -1.0], empty_row="zero_zero")
    expect_pass("features: keyless rows with sink 0 under a declared zero_zero rule", p("feat-sink-zero"))
    for bug, hyp in [("window_top_left", "window_top_left"), ("window_left+1", "window_left+1"),
                     ("alibi_sign", "alibi_sign_flipped"), ("alibi_abs", "alibi_abs"),
                     ("softcap_ignored", "softcap_ignored"), ("softcap_after_mask", "softcap_after_mask"),
                     ("sinks_ignored", "sinks_ignored")]:
        feature_dump(p("feat-bug-" + bug), bug=bug)
        expect_match("features bug " + bug, p("feat-bug-" + bug), hyp)

    good, m = feature_dump(p("feat-good"))
    swap = lambda name, new: [new if t[0] == name else t for t in good]  # noqa: E731
    for key, val, words in [("window_left", -2, ["AC_ERR_PARSE", "metadata key 'window_left'", "integer >= -1"]),
                            ("window_right", 1.5, ["AC_ERR_PARSE", "metadata key 'window_right'"]),
                            ("window_left", "3", ["AC_ERR_PARSE", "metadata key 'window_left'"]),
                            ("softcap", -1.0, ["AC_ERR_PARSE", "metadata key 'softcap'", ">= 0"]),
                            ("softcap", "tanh", ["AC_ERR_PARSE", "metadata key 'softcap'"])]:
        write_dump(p("feat-bad-meta"), good, dict(m, **{key: val}))
        expect_error("malformed %s = %r" % (key, val), p("feat-bad-meta"), words)
    write_dump(p("feat-bad-alibi-shape"), swap("alibi_slopes", ("alibi_slopes", "F32", (3,), f32([1, 2, 3]))), m)
    expect_error("alibi_slopes of 3 entries, Hq = 4", p("feat-bad-alibi-shape"),
                 ["AC_ERR_SHAPE", "tensor 'alibi_slopes' dim 0 = 3"])
    write_dump(p("feat-bad-alibi-dtype"),
               swap("alibi_slopes", ("alibi_slopes", "F16", (4,), np.ones(4, np.float16).tobytes())), m)
    expect_error("alibi_slopes in F16", p("feat-bad-alibi-dtype"),
                 ["AC_ERR_UNSUPPORTED", "tensor 'alibi_slopes': dtype F16"])
    write_dump(p("feat-bad-alibi-inf"), swap("alibi_slopes", ("alibi_slopes", "F32", (4,), f32([1, math.inf, 0, 0]))),
               m)
    expect_error("an infinite ALiBi slope", p("feat-bad-alibi-inf"), ["AC_ERR_SHAPE", "alibi_slopes[1] = inf"])
    write_dump(p("feat-bad-sink-nan"), swap("sinks", ("sinks", "F32", (4,), f32([0, 0, math.nan, 0]))), m)
    expect_error("a NaN sink", p("feat-bad-sink-nan"), ["AC_ERR_SHAPE", "sinks[2] = nan"])
    write_dump(p("feat-bad-sink-posinf"), swap("sinks", ("sinks", "F32", (4,), f32([math.inf, 0, 0, 0]))), m)
    expect_error("a +inf sink", p("feat-bad-sink-posinf"), ["AC_ERR_SHAPE", "sinks[0] = inf"])
    comb = combine_dump(p("feat-combine"))
    with open(p("feat-combine"), "rb") as fh:
        blob = fh.read()
    n = struct.unpack("<Q", blob[:8])[0]
    cm = json.loads(json.loads(blob[8:8 + n])["__metadata__"]["attncheck"])
    write_dump(p("feat-bad-combine"), comb, dict(cm, softcap=2.0))
    expect_error("softcap on a combine", p("feat-bad-combine"),
                 ["AC_ERR_PARSE", "metadata key 'softcap': combine takes no window"])
    write_dump(p("feat-bad-combine-sinks"), comb + [("sinks", "F32", (4,), f32([0, 0, 0, 0]))], cm)
    expect_error("sinks in a combine dump", p("feat-bad-combine-sinks"),
                 ["AC_ERR_PARSE", "tensor 'sinks': not part of a combine dump"])


# ---- an FP8 K/V cache and D_v != D_qk (kv-spec) ------------------------------------------

def kv_dump(path, fmt="e4m3", dv=16, scales=([0.5, 2.0], [0.25, 4.0]), bug=None):
    """Contiguous bf16 prefill (BR, Hq=4, Hkv=2, D_qk=32) whose K/V are FP8 codes of `fmt`
    with k_scale/v_scale `scales` (fmt None: K/V in bf16, no scales), V of D_v = dv;
    the output from the contract in float64 (value = decode(code) * scale_g), or with
    one classic bug: "v_scale_dropped" (O = sum_j P_j decode(v_j)), "dv_as_dqk" (V element
    (r, g, d) read at (r * Hkv + g) * D_qk + d of v's elements, 0 past the end)."""
    from attncheck.bridge import float_to_fp8, fp8_to_float
    rng = np.random.default_rng(13)
    half = Half("BF16")
    hq, hkv, d = 4, 2, 32
    cu_q, cu_k = [0, 5, 8], [0, 9, 15]
    q = half.random(rng, (cu_q[-1], hq, d))
    if fmt:
        kc = float_to_fp8(rng.standard_normal((cu_k[-1], hkv, d)), fmt)
        vc = float_to_fp8(rng.standard_normal((cu_k[-1], hkv, dv)), fmt)
        ks, vs = (np.broadcast_to(np.asarray(s, np.float32).astype(np.float64), (hkv,)) for s in scales)
        if bug == "v_scale_dropped":
            vs = np.ones(hkv)
        k_raw, v_raw = fp8_to_float(kc, fmt), fp8_to_float(vc, fmt)
    else:
        kc, vc = half.random(rng, (cu_k[-1], hkv, d)), half.random(rng, (cu_k[-1], hkv, dv))
        ks = vs = np.ones(hkv)
        k_raw, v_raw = kc, vc
    if bug == "dv_as_dqk":
        flat = v_raw.reshape(-1)
        rows = np.arange(cu_k[-1])[:, None, None] * hkv + np.arange(hkv)[None, :, None]
        src = rows * d + np.arange(dv)[None, None, :]
        v_raw = np.where(src < flat.size, flat[np.minimum(src, flat.size - 1)], 0.0)
    k_val, v_val = k_raw * ks[None, :, None], v_raw * vs[None, :, None]
    out, lse = attention(q, k_val, v_val, cu_q, cu_k, "BR", 1.0 / math.sqrt(d), lambda h: h // (hq // hkv))
    dt = {"e4m3": "F8_E4M3", "e5m2": "F8_E5M2", None: "BF16"}[fmt]
    enc = (lambda a: np.asarray(a, np.uint8).tobytes()) if fmt else half.encode
    tensors = [("q", "BF16", q.shape, half.encode(q)), ("k", dt, kc.shape, enc(kc)), ("v", dt, vc.shape, enc(vc)),
               ("cu_seqlens_q", "I32", (3,), i32(cu_q)), ("cu_seqlens_k", "I32", (3,), i32(cu_k)),
               ("out", "BF16", out.shape, half.encode(out)), ("lse", "F32", lse.shape, f32(lse))]
    if fmt:
        tensors += [("k_scale", "F32", (len(scales[0]),), f32(scales[0])),
                    ("v_scale", "F32", (len(scales[1]),), f32(scales[1]))]
    write_dump(path, tensors, meta())


def expect_clean_pass(name, path):
    """Passes, and the report names no hypothesis (no diagnosis runs on a pass)."""
    rc, out, rep = verify(path)
    match = (rep.get("diagnosis") or {}).get("match")
    check(name + ": passes (exit 0), no hypothesis named", rc == 0 and rep.get("status") == "pass" and not match
          and "v_scale_dropped" not in out and "dv_read_as_dqk" not in out, "exit %d, match %r\n%s" % (rc, match,
                                                                                                     out[-3000:]))


def kv_checks(p):
    kv_dump(p("kv-e4m3-dv"))
    expect_clean_pass("FP8 E4M3, per-head scales, D_v 16 < D_qk 32", p("kv-e4m3-dv"))
    kv_dump(p("kv-e5m2"), fmt="e5m2", dv=32, scales=([0.125], [3.0]))
    expect_clean_pass("FP8 E5M2, one scale per tensor, D_v = D_qk", p("kv-e5m2"))
    kv_dump(p("kv-dv48"), fmt=None, dv=48)
    expect_clean_pass("bf16 K/V, D_v 48 > D_qk 32", p("kv-dv48"))
    kv_dump(p("kv-bug-vscale"), bug="v_scale_dropped")
    expect_match("FP8 E4M3 per-head scales, output without v_scale", p("kv-bug-vscale"), "v_scale_dropped")
    kv_dump(p("kv-bug-vscale-e5m2"), fmt="e5m2", dv=32, scales=([0.125], [3.0]), bug="v_scale_dropped")
    expect_match("FP8 E5M2 per-tensor scale, output without v_scale", p("kv-bug-vscale-e5m2"), "v_scale_dropped")
    kv_dump(p("kv-bug-dv"), fmt=None, bug="dv_as_dqk")
    expect_match("bf16 K/V D_v 16, V read with stride D_qk", p("kv-bug-dv"), "dv_read_as_dqk")
    kv_dump(p("kv-bug-dv-fp8"), bug="dv_as_dqk")
    expect_match("FP8 E4M3 D_v 16, V read with stride D_qk", p("kv-bug-dv-fp8"), "dv_read_as_dqk")


def paged_dump(path, op="decode", hnd=False, lse_ht=False, empty_posinf=False):
    """Paged K/V (block size 16, permuted table, NaN in unused slots)."""
    rng = np.random.default_rng(11)
    half = Half("BF16")
    hq, hkv, d, bs, nb = 4, 1, 64, 16, 9
    lq = [1, 3, 2] if op == "decode" else [4, 2, 6]
    lk = [20, 33, 5]
    if empty_posinf:
        lq, lk = [4, 2, 6], [20, 33, 3]  # BR: the first rows of sequence 2 see no key
    cu_q = np.concatenate([[0], np.cumsum(lq)]).astype(int)
    q = half.random(rng, (cu_q[-1], hq, d))
    cache_k = np.full((nb, bs, hkv, d), np.nan)
    cache_v = np.full((nb, bs, hkv, d), np.nan)
    perm = list(rng.permutation(nb))
    table = np.full((3, 4), -1, dtype=np.int64)
    kc, vc = [], []
    for b in range(3):
        used = -(-lk[b] // bs)
        for i in range(used):
            table[b, i] = perm.pop()
        kb = half.random(rng, (lk[b], hkv, d))
        vb = half.random(rng, (lk[b], hkv, d))
        for p in range(lk[b]):
            cache_k[table[b, p // bs], p % bs] = kb[p]
            cache_v[table[b, p // bs], p % bs] = vb[p]
        kc.append(kb)
        vc.append(vb)
    cu_k = np.concatenate([[0], np.cumsum(lk)]).astype(int)
    out, lse = attention(q, np.concatenate(kc), np.concatenate(vc), cu_q, cu_k, "BR", 1.0 / math.sqrt(d),
                         lambda h: h // (hq // hkv))
    if empty_posinf:
        lse[np.isneginf(lse)] = np.inf  # flash-attn's empty rows
    if hnd:
        q_file, out_file = q.transpose(1, 0, 2), out.transpose(1, 0, 2)
        ck, cv = cache_k.transpose(0, 2, 1, 3), cache_v.transpose(0, 2, 1, 3)
    else:
        q_file, out_file, ck, cv = q, out, cache_k, cache_v
    lse_file = lse.T if lse_ht else lse
    tensors = [("q", "BF16", q_file.shape, half.encode(np.ascontiguousarray(q_file))),
               ("k_cache", "BF16", ck.shape, half.encode(np.ascontiguousarray(ck))),
               ("v_cache", "BF16", cv.shape, half.encode(np.ascontiguousarray(cv))),
               ("block_table", "I64", table.shape, table.astype(np.int64).tobytes()),
               ("seqlens_k", "I32", (3,), i32(lk)), ("cu_seqlens_q", "I32", (4,), i32(cu_q)),
               ("out", "BF16", out_file.shape, half.encode(np.ascontiguousarray(out_file))),
               ("lse", "F32", lse_file.shape, f32(np.ascontiguousarray(lse_file)))]
    if op == "decode":
        tensors.append(("num_splits", "I32", (), i32([3])))
    m = meta(op=op, layout="HND" if hnd else "NHD", kv_layout="HND" if hnd else "NHD",
             lse_layout="HT" if lse_ht else "TH", empty_row="zero_posinf" if empty_posinf else "zero_neginf")
    write_dump(path, tensors, m)


def paged_bug_dump(path, bug):
    """Paged prefill whose kernel misreads the cache: one key past seqlens_k
    ("past1"), block_table entries one too high ("table1"), the next slot
    ("off1"). Every slot is finite, so the wrong reads have something to read."""
    rng = np.random.default_rng(21)
    half = Half("BF16")
    hq, hkv, d, bs, nb = 4, 2, 32, 8, 12
    lq, lk = [3, 2], [13, 6]
    cu_q = np.concatenate([[0], np.cumsum(lq)]).astype(int)
    q = half.random(rng, (cu_q[-1], hq, d))
    ck = half.random(rng, (nb, bs, hkv, d)).reshape(nb * bs, hkv, d)
    cv = half.random(rng, (nb, bs, hkv, d)).reshape(nb * bs, hkv, d)
    table = np.array([[5, 2, 9], [7, 0, 3]], dtype=np.int32)
    slot = {"past1": lambda b, p: table[b, p // bs] * bs + p % bs,
            "table1": lambda b, p: (table[b, p // bs] + 1) * bs + p % bs,
            "off1": lambda b, p: table[b, p // bs] * bs + p % bs + 1}[bug]
    n_read = [n + 1 for n in lk] if bug == "past1" else lk
    ks = np.concatenate([ck[[slot(b, p) for p in range(n_read[b])]] for b in range(2)])
    vs = np.concatenate([cv[[slot(b, p) for p in range(n_read[b])]] for b in range(2)])
    cu_k = np.concatenate([[0], np.cumsum(n_read)]).astype(int)
    out, lse = attention(q, ks, vs, cu_q, cu_k, "BR", 1.0 / math.sqrt(d), lambda h: h // (hq // hkv))
    shape = (nb, bs, hkv, d)
    tensors = [("q", "BF16", q.shape, half.encode(q)), ("k_cache", "BF16", shape, half.encode(ck)),
               ("v_cache", "BF16", shape, half.encode(cv)), ("block_table", "I32", table.shape, table.tobytes()),
               ("seqlens_k", "I32", (2,), i32(lk)), ("cu_seqlens_q", "I32", (3,), i32(cu_q)),
               ("out", "BF16", out.shape, half.encode(out)), ("lse", "F32", lse.shape, f32(lse))]
    write_dump(path, tensors, meta())


def combine_dump(path):
    rng = np.random.default_rng(3)
    rows, splits, d = 6, 4, 32
    o_part = rng.standard_normal((rows, splits, d)).astype(np.float32)
    lse_part = (rng.standard_normal((rows, splits)) * 3).astype(np.float32)
    lse_part[1, 2] = -np.inf
    lse_part[4, :] = -np.inf  # a row of empty splits
    o_part[1, 2] = np.nan     # never read
    out = np.zeros((rows, d))
    lse = np.full(rows, -np.inf)
    for r in range(rows):
        ls = lse_part[r].astype(np.float64)
        live = np.isfinite(ls)
        if not live.any():
            continue
        m = ls[live].max()
        w = np.exp(ls[live] - m)
        lse[r] = m + math.log(w.sum())
        out[r] = (w[:, None] * o_part[r][live].astype(np.float64)).sum(0) / w.sum()
    tensors = [("o_part", "F32", o_part.shape, f32(o_part)), ("lse_part", "F32", lse_part.shape, f32(lse_part)),
               ("out", "F32", out.shape, f32(out)), ("lse", "F32", lse.shape, f32(lse))]
    write_dump(path, tensors, meta(op="combine", causal="none"))
    return tensors


def store_dump(path):
    rng = np.random.default_rng(5)
    half = Half("F16")
    nb, bs, hkv, d, t = 4, 8, 2, 16, 5
    before_k = half.random(rng, (nb, bs, hkv, d))
    before_v = half.random(rng, (nb, bs, hkv, d))
    k_new = half.random(rng, (t, hkv, d))
    v_new = half.random(rng, (t, hkv, d))
    slots = [3, 17, -1, 30, 8]
    after_k, after_v = before_k.copy().reshape(nb * bs, hkv, d), before_v.copy().reshape(nb * bs, hkv, d)
    for i, s in enumerate(slots):
        if s >= 0:
            after_k[s], after_v[s] = k_new[i], v_new[i]
    sh = (nb, bs, hkv, d)
    tensors = [("k_new", "F16", k_new.shape, half.encode(k_new)), ("v_new", "F16", v_new.shape, half.encode(v_new)),
               ("slot_mapping", "I64", (t,), np.asarray(slots, dtype=np.int64).tobytes()),
               ("k_cache", "F16", sh, half.encode(before_k)), ("v_cache", "F16", sh, half.encode(before_v)),
               ("k_cache_out", "F16", sh, half.encode(after_k.reshape(sh))),
               ("v_cache_out", "F16", sh, half.encode(after_v.reshape(sh)))]
    write_dump(path, tensors, meta(op="store", causal="none"))


def main():
    tmp = tempfile.mkdtemp(prefix="test_verify.")
    p = lambda n: os.path.join(tmp, n + ".safetensors")

    # Correct calls pass.
    good = prefill_dump(p("prefill-ok"))
    expect_pass("prefill fp16 contiguous BR", p("prefill-ok"))
    prefill_dump(p("prefill-bf16-f32out"), half=Half("BF16"), out_f32=True)
    expect_pass("prefill bf16, fp32 output", p("prefill-bf16-f32out"))
    prefill_dump(p("prefill-scale"), scale_decl=0.3)
    expect_pass("prefill explicit scale 0.3", p("prefill-scale"))
    paged_dump(p("decode-ok"))
    expect_pass("decode paged (NaN in unused slots, I64 table, num_splits)", p("decode-ok"))
    paged_dump(p("decode-hnd"), hnd=True, lse_ht=True)
    expect_pass("decode with HND layouts and an HT LSE", p("decode-hnd"))
    combine_dump(p("combine-ok"))
    expect_pass("combine fp32 (an empty split, a row of empty splits)", p("combine-ok"))
    store_dump(p("store-ok"))
    expect_pass("store through an I64 slot mapping", p("store-ok"))

    # Classic bugs fail and are named.
    for bug, hyp in [("top_left", "causal=TOP_LEFT"), ("scale_one", "scale=1.0"), ("h_mod_hkv", "kv_head=h%Hkv"),
                     ("kv_swap", "k_v_swapped"), ("lse_base2", "lse_base=2")]:
        prefill_dump(p("bug-" + bug), bug=bug)
        expect_match("bug " + bug, p("bug-" + bug), hyp)

    for bug, hyp in [("past1", "reads_seqlen+1"), ("table1", "block_table+1"), ("off1", "slot_offset+1")]:
        paged_bug_dump(p("paged-" + bug), bug)
        expect_match("paged bug " + bug, p("paged-" + bug), hyp)

    # Empty rows: flash-attn's +inf declared -> passes and is reported; declared
    # as this contract's -inf -> fails, and the report names what they hold.
    paged_dump(p("empty-posinf"), op="prefill", empty_posinf=True)
    rc, out, rep = verify(p("empty-posinf"))
    er = rep.get("empty_rows") or {}
    check("empty rows LSE +inf declared zero_posinf: pass, reported as flash-attn's",
          rc == 0 and er.get("convention") == "zero_posinf" and er.get("rows", 0) > 0 and er.get("as_declared"),
          out[-2000:])
    with open(p("empty-posinf"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    m = json.loads(hdr["__metadata__"]["attncheck"])
    m["empty_row"] = "zero_neginf"
    hdr["__metadata__"]["attncheck"] = json.dumps(m)
    text = json.dumps(hdr).encode()
    text += b" " * (-len(text) % 8)
    with open(p("empty-undeclared"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
    rc, out, rep = verify(p("empty-undeclared"))
    er = rep.get("empty_rows") or {}
    check("empty rows LSE +inf declared zero_neginf: fail, named flash-attn's convention",
          rc == 1 and er.get("convention") == "zero_posinf" and not er.get("as_declared")
          and "flash-attn 2/3" in out, out[-2000:])

    feature_checks(p)
    kv_checks(p)

    # Malformed dumps: exit 2, named error.
    with open(p("prefill-ok"), "rb") as f:
        blob = f.read()
    with open(p("bad-truncated"), "wb") as f:
        f.write(blob[:len(blob) - 100])
    expect_error("truncated", p("bad-truncated"), ["AC_ERR_PARSE", "tensor 'lse'", "outside the data section"])
    n = struct.unpack("<Q", blob[:8])[0]
    broken = bytearray(blob)
    broken[8 + n // 2] = ord("}")
    with open(p("bad-json"), "wb") as f:
        f.write(broken)
    expect_error("bad JSON", p("bad-json"), ["AC_ERR_PARSE", "JSON syntax error"])
    write_dump(p("bad-missing"), [t for t in good if t[0] != "v"], meta())
    expect_error("missing tensor", p("bad-missing"), ["AC_ERR_PARSE", "tensor 'v': missing"])
    wrong = [t if t[0] != "k" else ("k", "F16", (15, 2, 32), t[3][:len(t[3]) // 2]) for t in good]
    write_dump(p("bad-shape"), wrong, meta())
    expect_error("wrong shape", p("bad-shape"), ["AC_ERR_SHAPE", "tensor 'k' dim 2 = 32"])
    with open(p("bad-header-length"), "wb") as f:
        f.write(struct.pack("<Q", 1 << 40) + blob[8:])
    expect_error("huge header length", p("bad-header-length"), ["AC_ERR_PARSE", "header length 1099511627776"])
    with open(p("bad-header-past-end"), "wb") as f:
        f.write(struct.pack("<Q", len(blob) - 8 + 1000) + blob[8:])
    expect_error("header length past the end", p("bad-header-past-end"), ["AC_ERR_PARSE", "past the end of the file"])
    write_dump(p("bad-unknown-key"), good, dict(meta(), foo=1))
    expect_error("unknown metadata key", p("bad-unknown-key"), ["AC_ERR_PARSE", "metadata key 'foo': unknown"])

    # A folder: every *.safetensors in name order; JUnit names each testcase by its case line.
    folder = os.path.join(tmp, "folder")
    os.mkdir(folder)
    shutil.copy(p("prefill-ok"), os.path.join(folder, "a.safetensors"))
    shutil.copy(p("bug-top_left"), os.path.join(folder, "b.safetensors"))
    junit = os.path.join(tmp, "junit.xml")
    r = subprocess.run([ATTNCHECK, "verify", "--quiet", folder, "--junit", junit], capture_output=True, text=True)
    try:
        suite = ET.parse(junit).getroot().find("testsuite")
        cases = suite.findall("testcase")
        ok = (r.returncode == 1 and suite.get("tests") == "2" and suite.get("failures") == "1" and len(cases) == 2
              and cases[0].get("name").startswith("prefill fp16 B=2 Hq=4 Hkv=2 D=64")
              and cases[1].find("failure") is not None and "causal=TOP_LEFT" in cases[1].find("failure").text)
    except (OSError, ET.ParseError, AttributeError) as e:
        ok, r.stdout = False, r.stdout + repr(e)
    check("a folder with --quiet --junit: exit 1, two testcases, the failure carries the diagnosis", ok,
          r.stdout[-2000:])

    print("test_verify: %d passed, %d failed" % (len(CHECKS) - len(FAILS), len(FAILS)))
    if not FAILS:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("test_verify: dumps kept in " + tmp)
    return 1 if FAILS or not CHECKS else 0


if __name__ == "__main__":
    sys.exit(main())
