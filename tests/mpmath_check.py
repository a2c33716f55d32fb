#!/usr/bin/python3
"""Independent cross-check of the oracle with mpmath (mp.prec = 200).

Runs oracle_dump (path given as argv[1]; further arguments go to it:
--cases N --mode fast|mpfr --seed S), which prints random small cases
with their exact inputs (bit patterns) and the oracle's answers, and
recomputes every answer here from SEMANTICS.md alone: which keys a query
sees (causal modes, masks, GQA, the paged cache), the softmax, the LSE and
the combine of split partials, and the features of docs/CONTRACT.md
("Windows, softcap, ALiBi and sinks"): the bottom-right window, the softcap
c tanh(s/c) on scale q.k, the ALiBi bias slope (j - i - (Lk - Lq)) after it,
and a sink's term in the denominator only (an empty row with a finite sink:
O = 0, LSE = sink). Nothing here is translated from the C code.

Requires, per evaluated (row, head): the same number of allowed keys; O
rounded to fp32 within 1 fp32 ulp of mpmath's value rounded to fp32 (and
the same for the case dtype); LSE within 1e-12 relative (absolute below 1);
sum_j P_j |v_j| within 1e-9 relative. Exits non-zero on any disagreement
or when fewer than 200 cases were compared.
"""
import math
import struct
import subprocess
import sys

from mpmath import mp, mpf

mp.prec = 200

# Binary formats: significand bits (hidden one included) and the exponent of
# the smallest normal, 2^emin.
FORMATS = {"fp32": (24, -126), "bf16": (8, -126), "fp16": (11, -14)}
MAX_FINITE = {"fp32": (2 - 2.0**-23) * 2.0**127, "bf16": (2 - 2.0**-7) * 2.0**127, "fp16": 65504.0}


def f32_from_bits(h):
    return struct.unpack(">f", struct.pack(">I", int(h, 16)))[0]


def half_from_bits(dtype, h):
    """Exact value of a bf16 / fp16 bit pattern, from the bit fields."""
    b = int(h, 16) if isinstance(h, str) else h
    sign = -1.0 if b & 0x8000 else 1.0
    if dtype == "bf16":
        e, m = (b >> 7) & 0xFF, b & 0x7F
        if e == 0xFF:
            return math.nan if m else sign * math.inf
        return sign * (m * 2.0**-133 if e == 0 else (128 + m) * 2.0 ** (e - 134))
    e, m = (b >> 10) & 0x1F, b & 0x3FF
    if e == 0x1F:
        return math.nan if m else sign * math.inf
    return sign * (m * 2.0**-24 if e == 0 else (1024 + m) * 2.0 ** (e - 25))


def fp8_from_bits(fmt, h):
    """Exact value of an FP8 code (the low byte of a storage element), from
    its bit fields: E4M3FN (bias 7, no Inf, S.1111.111 NaN) or E5M2 (bias 15)."""
    b = (int(h, 16) if isinstance(h, str) else h) & 0xFF
    sign = -1.0 if b & 0x80 else 1.0
    if fmt == "e4m3":
        e, m = (b >> 3) & 0xF, b & 0x7
        if e == 0xF and m == 0x7:
            return math.nan
        return sign * (m * 2.0**-9 if e == 0 else (8 + m) * 2.0 ** (e - 10))
    e, m = (b >> 2) & 0x1F, b & 0x3
    if e == 0x1F:
        return math.nan if m else sign * math.inf
    return sign * (m * 2.0**-16 if e == 0 else (4 + m) * 2.0 ** (e - 17))


def round_to_format(x, fmt):
    """mpf x rounded to nearest-even in the format (subnormals, overflow to
    inf), returned as the exact Python float. Integer arithmetic only."""
    p, emin = FORMATS[fmt]
    if x == 0:
        return 0.0
    sign = -1 if x < 0 else 1
    man, exp = abs(x).man_exp  # |x| = man * 2^exp, man odd integer
    e = man.bit_length() + exp  # |x| in [2^(e-1), 2^e)
    qe = max(e - p, emin - p + 1)  # quantum of the format at |x|
    shift = exp - qe
    if shift >= 0:
        n = man << shift
    else:
        n, rem = divmod(man, 1 << -shift)
        half = 1 << (-shift - 1)
        if rem > half or (rem == half and n % 2 == 1):
            n += 1
    val = float(n) * 2.0**qe  # exact: n <= 2^p, qe within double's range
    if val > MAX_FINITE[fmt]:
        return sign * math.inf
    return sign * val


def ulp_distance(fmt, a, b):
    """Number of format values between a and b (both format values)."""
    if a == b:
        return 0
    p, emin = FORMATS[fmt]
    lo, hi = min(a, b), max(a, b)
    # Count steps by walking quanta: exact for the small distances we expect.
    steps, x = 0, lo
    while x < hi and steps < 3:
        ax = abs(x)
        e = math.frexp(ax)[1] if ax != 0 else emin
        if x < 0 and ax == 2.0 ** (e - 1):
            e -= 1  # moving up from -2^k toward 0 uses the finer quantum below 2^k
        q = 2.0 ** max(e - p, emin - p + 1)
        x += q
        steps += 1
    return steps if x >= hi else 99


def default_scale(D):
    """1/sqrt(D) evaluated in fp32: sqrt rounded to fp32, then the quotient."""
    s = round_to_format(mp.sqrt(D), "fp32")
    return round_to_format(mpf(1) / mpf(s), "fp32")


def softmax_out(logits, rows_v, D, sink=None):
    """LSE and O for the allowed logits (mpf) and their V rows (floats); a
    sink (mpf, or None) adds exp(sink) to the denominator and weights no V."""
    if not logits:
        if sink is not None:
            return sink, [mpf(0)] * D, [0.0] * D
        return mpf("-inf"), [mpf(0)] * D, [0.0] * D
    m = max(logits + ([sink] if sink is not None else []))
    w = [mp.exp(s - m) for s in logits]
    total = mp.fsum(w + ([mp.exp(sink - m)] if sink is not None else []))
    lse = m + mp.log(total)
    p = [wi / total for wi in w]
    # Divide last: with equal logits (w_j = 1 exactly) the quotient of exact
    # sums is exact, so exact ties of the final rounding stay exact.
    out = [mp.fsum(w[j] * rows_v[j][d] for j in range(len(w))) / total for d in range(D)]
    spv = [float(mp.fsum(p[j] * abs(rows_v[j][d]) for j in range(len(p)))) for d in range(D)]
    return lse, out, spv


def expected_rows(case):
    """(row index -> (n_allowed, lse, O list, spv list)) from the contract."""
    B, Hq, Hkv, D = case["dims"]
    Dv = case.get("dv", [D])[0]  # V and the output; q.k runs over D
    lq, lk = case["lq"], case["lk"]
    out = {}
    if case["op"] == "combine":
        S = case["splits"]
        lse_p = [f32_from_bits(h) for h in case["lse_part"]]
        o_p = [f32_from_bits(h) for h in case["o_part"]]
        for r in range(sum(lq) * Hq):
            keep = [s for s in range(S) if lse_p[r * S + s] != -math.inf]
            # In the base-2 convention (FlashInfer's merge_state) the split
            # LSEs come in base 2 as well: 2^l = e^(l ln 2).
            unit = mp.log(2) if case["base2"] else mpf(1)
            logits = [mpf(lse_p[r * S + s]) * unit for s in keep]
            vrows = [o_p[(r * S + s) * D:(r * S + s + 1) * D] for s in keep]
            lse, o, spv = softmax_out(logits, vrows, D)
            out[r] = (len(keep), lse, o, spv)
        return out
    dtype = case["dtype"]
    kv_format = case.get("kv_format", "dtype")
    nsc = len(case.get("k_scales", []))
    k_sc = [f32_from_bits(x) for x in case.get("k_scales", [])]
    v_sc = [f32_from_bits(x) for x in case.get("v_scales", [])]

    def kv_value(bits, kvh, scales):
        """A K/V element's value: the half, or decode(code) * the head's scale."""
        if kv_format == "dtype":
            return half_from_bits(dtype, bits)
        sc = scales[0 if nsc == 1 else kvh] if nsc else 1.0
        return mpf(fp8_from_bits(kv_format, bits)) * mpf(sc)

    q = [half_from_bits(dtype, h) for h in case["q"]]
    k = case["k"]
    v = case["v"]
    scale = mpf(f32_from_bits(case["scale"][0])) if case["scale_given"] else mpf(default_scale(D))
    causal = case["causal"]
    mask_kind, per_head = case["mask"]
    paged, block_size, num_blocks, max_blocks = case["paged"]
    table = case.get("table", [])
    group = Hq // Hkv
    wl, wr = case.get("window", [-1, -1])
    cap = mpf(f32_from_bits(case["softcap"][0])) if "softcap" in case else None
    slopes = [mpf(f32_from_bits(x)) for x in case["alibi"]] if "alibi" in case else None
    sinks = [f32_from_bits(x) for x in case["sinks"]] if "sinks" in case else None
    q_start, k_start, m_start = 0, 0, 0
    for b in range(B):
        Lq, Lk = lq[b], lk[b]

        def kv_offset(p, kvh, dim):
            if paged:
                block = table[b * max_blocks + p // block_size]
                slot = block * block_size + p % block_size
                return (slot * Hkv + kvh) * dim
            return ((k_start + p) * Hkv + kvh) * dim

        for i in range(Lq):
            for h in range(Hq):
                kvh = h // group  # contiguous groups (repeat_interleave)
                qrow = q[((q_start + i) * Hq + h) * D:((q_start + i) * Hq + h + 1) * D]
                logits, vrows = [], []
                for j in range(Lk):
                    if causal == 1 and not j <= i:
                        continue
                    if causal == 2 and not j <= i + (Lk - Lq):
                        continue
                    # The window is aligned bottom-right, whatever the causal mode.
                    if wl >= 0 and j < i + (Lk - Lq) - wl:
                        continue
                    if wr >= 0 and j > i + (Lk - Lq) + wr:
                        continue
                    bias = mpf(0)
                    if mask_kind:
                        mi = m_start + ((h if per_head else 0) * Lq + i) * Lk + j
                        if mask_kind == 1:
                            if not case["mask_bool"][mi]:
                                continue
                        else:
                            bv = f32_from_bits(case["mask_bias"][mi])
                            if bv == -math.inf:
                                continue
                            bias = mpf(bv)
                    off = kv_offset(j, kvh, D)
                    krow = [kv_value(x, kvh, k_sc) for x in k[off:off + D]]
                    dot = mp.fsum(mpf(qrow[d]) * krow[d] for d in range(D))
                    s = scale * dot
                    if cap is not None:
                        s = cap * mp.tanh(s / cap)
                    if slopes is not None:
                        s += slopes[h] * (j - i - (Lk - Lq))
                    logits.append(s + bias)
                    voff = kv_offset(j, kvh, Dv)
                    vrows.append([kv_value(x, kvh, v_sc) for x in v[voff:voff + Dv]])
                r = (q_start + i) * Hq + h
                sink = None
                if sinks is not None and sinks[h] != -math.inf:
                    sink = mpf(sinks[h])
                lse, o, spv = softmax_out(logits, vrows, Dv, sink)
                out[r] = (len(logits), lse, o, spv)
        q_start += Lq
        k_start += Lk
        m_start += (Hq if per_head else 1) * Lq * Lk
    return out


def parse(stream):
    case = None
    for line in stream:
        parts = line.split()
        if not parts:
            continue
        key, vals = parts[0], parts[1:]
        if key == "case":
            case = {"line": line[5:].strip(), "rows": []}
        elif key == "end":
            yield case
            case = None
        elif key in ("op", "dtype", "kv_format"):
            case[key] = vals[0]
        elif key in ("dims", "lq", "lk", "paged", "table", "mask", "mask_bool", "window", "dv"):
            case[key] = [int(x) for x in vals]
        elif key in ("scale_given", "causal", "base2", "splits"):
            case[key] = int(vals[0])
        elif key in ("scale", "q", "k", "v", "mask_bias", "lse_part", "o_part", "softcap", "alibi", "sinks",
                     "k_scales", "v_scales"):
            case[key] = vals
        elif key == "row":
            case["rows"].append({"r": int(vals[0]), "n": int(vals[1]), "lse": float.fromhex(vals[2])})
        elif key == "of":
            case["rows"][-1]["of"] = [f32_from_bits(x) for x in vals]
        elif key == "oh":
            case["rows"][-1]["oh"] = [half_from_bits(case["dtype"], x) for x in vals]
        elif key == "spv":
            case["rows"][-1]["spv"] = [float.fromhex(x) for x in vals]


def main():
    dump = sys.argv[1]
    extra = sys.argv[2:]
    proc = subprocess.run([dump] + extra, capture_output=True, text=True, check=True)
    cases = rows = elems = exact32 = exacth = featured = kv_featured = fp8_cases = 0
    failures = []
    ln2 = mp.log(2)
    for case in parse(proc.stdout.splitlines()):
        want = expected_rows(case)
        D = case.get("dv", [case["dims"][3]])[0]  # the output's dims
        dtype = case["dtype"]
        for got in case["rows"]:
            n, lse, o, spv = want[got["r"]]
            where = "%s | row %d" % (case["line"], got["r"])
            if got["n"] != n:
                failures.append("%s: n_allowed %d, mpmath %d" % (where, got["n"], n))
                continue
            if case["base2"] and lse != mpf("-inf"):
                lse = lse / ln2
            if lse == mpf("-inf"):
                if got["lse"] != -math.inf:
                    failures.append("%s: empty row, lse %r" % (where, got["lse"]))
            elif abs(mpf(got["lse"]) - lse) > mpf("1e-12") * max(abs(lse), 1):
                failures.append("%s: lse %r, mpmath %s" % (where, got["lse"], mp.nstr(lse, 20)))
            for d in range(D):
                w32 = round_to_format(o[d], "fp32")
                wh = round_to_format(o[d], dtype)
                d32 = ulp_distance("fp32", got["of"][d], w32)
                dh = ulp_distance(dtype, got["oh"][d], wh)
                exact32 += d32 == 0
                exacth += dh == 0
                if d32 > 1 or dh > 1:
                    failures.append("%s d %d: o_f32 %r / %s %r, mpmath %s -> %r / %r"
                                    % (where, d, got["of"][d], dtype, got["oh"][d], mp.nstr(o[d], 25), w32, wh))
                if n and abs(got["spv"][d] - spv[d]) > 1e-9 * spv[d]:
                    failures.append("%s d %d: spv %r, mpmath %r" % (where, d, got["spv"][d], spv[d]))
            rows += 1
            elems += D
        cases += 1
        featured += any(k in case for k in ("window", "softcap", "alibi", "sinks"))
        kv_featured += "dv" in case or "kv_format" in case
        fp8_cases += "kv_format" in case
    print("mpmath check (prec %d): %d cases (%d with features, %d with D_v or an FP8 cache, %d of them FP8), "
          "%d rows, %d elements; o_f32 equal to mpmath's rounding in %d, o_half in %d (the rest within 1 ulp); "
          "%d disagreements"
          % (mp.prec, cases, featured, kv_featured, fp8_cases, rows, elems, exact32, exacth, len(failures)))
    for f in failures[:20]:
        print("FAIL", f)
    if failures or cases < 200 or featured < 60 or kv_featured < 30 or fp8_cases < 15:
        if cases < 200:
            print("FAIL: only %d cases compared (need 200)" % cases)
        if featured < 60:
            print("FAIL: only %d cases with features (need 60)" % featured)
        if kv_featured < 30 or fp8_cases < 15:
            print("FAIL: only %d cases with D_v or FP8 (need 30), %d FP8 (need 15)" % (kv_featured, fp8_cases))
        sys.exit(1)

if __name__ == "__main__":
    main()
