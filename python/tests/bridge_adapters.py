"""Deliberately wrong adapters for test_bridge.py: each breaks one thing the
bridge or the verdict must catch and name (numpy only, like numpy_ref)."""

import math
import os
import time

import numpy as np

from attncheck.adapters import NumpyRef, attention_f64
from attncheck.bridge import Unsupported


class ScaleOne(NumpyRef):
    """The wrapper bug: 1.0 passed where the default 1/sqrt(D) was meant."""
    name = "scale_one"

    def _scale(self, case):
        return 1.0 if case.scale is None else case.scale_value()


class TopLeft(NumpyRef):
    """SDPA's is_causal (top-left) where bottom-right is declared."""
    name = "top_left"

    def _allowed(self, case, b):
        if case.causal != "BR":
            return case.allowed(b)
        lq, lk = case.seqlen_q[b], case.seqlen_k[b]
        tl = np.arange(lk)[None, :] <= np.arange(lq)[:, None]
        m = case.mask_block(b)
        return tl[None] & (m if m is not None and m.dtype == bool else True)


class GqaMod(NumpyRef):
    """Query head h reads KV head h % Hkv."""
    name = "gqa_mod"

    def _kv_head(self, case, h):
        return h % case.heads_kv


# ---- the features' classic bugs (docs/DIAGNOSIS.md): each must fail and be named ----

class WindowTopLeft(NumpyRef):
    """The window's diagonal at j = i (top-left) instead of i + Lk - Lq; the causal bound kept."""
    name = "window_top_left"

    def _allowed(self, case, b):
        lq, lk = int(case.seqlen_q[b]), int(case.seqlen_k[b])
        d = np.arange(lk)[None, :] - np.arange(lq)[:, None]  # j - i
        ok = case.causal_allowed(b).copy()
        if case.window_left >= 0:
            ok &= d >= -case.window_left
        if case.window_right >= 0:
            ok &= d <= case.window_right
        m = case.mask_block(b)
        return ok[None] & (m if m is not None and m.dtype == bool else True)


class AlibiSign(NumpyRef):
    """ALiBi added as -slope * (j - i - off)."""
    name = "alibi_sign"

    def _alibi(self, case, b):
        a = NumpyRef._alibi(self, case, b)
        return None if a is None else -a


class AlibiAbs(NumpyRef):
    """flash-attn's ALiBi, -slope * |j - i - off|, where the signed distance is declared."""
    name = "alibi_abs"

    def _alibi(self, case, b):
        a = NumpyRef._alibi(self, case, b)
        return None if a is None else -np.abs(a)


class SoftcapIgnored(NumpyRef):
    name = "softcap_ignored"

    def _softcap(self, case):
        return 0.0


class SoftcapAfterMask(NumpyRef):
    """tanh after masking, every key of the row visited: an excluded key weighs in with logit -c."""
    name = "softcap_after_mask"
    softcap_after_mask = True


class SinksIgnored(NumpyRef):
    name = "sinks_ignored"

    def _sinks(self, case):
        return None


class WindowLeftWide(NumpyRef):
    """The window one key wider on the left (i + off - left - 1 <= j)."""
    name = "window_left_wide"

    def _allowed(self, case, b):
        lq, lk = int(case.seqlen_q[b]), int(case.seqlen_k[b])
        d = np.arange(lk)[None, :] - (np.arange(lq)[:, None] + (lk - lq))
        wide = case.allowed(b) | ((d == -case.window_left - 1) & case.causal_allowed(b))[None]
        return wide if case.window_left >= 0 else case.allowed(b)


class WindowRightNarrow(NumpyRef):
    """The window one key narrower on the right (j < i + off + right)."""
    name = "window_right_narrow"

    def _allowed(self, case, b):
        lq, lk = int(case.seqlen_q[b]), int(case.seqlen_k[b])
        d = np.arange(lk)[None, :] - (np.arange(lq)[:, None] + (lk - lq))
        return case.allowed(b) & ~(d == case.window_right)[None] if case.window_right >= 0 else case.allowed(b)


class NoFeatures(NumpyRef):
    """numpy_ref declaring no feature: what every adapter written before them declares."""
    name = "no_features"
    features = {}


class WindowAlibiOnly(NumpyRef):
    name = "window_alibi_only"
    features = ["window", "alibi"]


class PoolTileLeak(NumpyRef):
    """Reads every slot of a sequence's blocks and gives the ones past seqlens_k
    a zero weight, then multiplies: right where those slots hold finite values,
    NaN where they hold NaN or Inf (0 * NaN), as flex_attention over a pool read
    in place does (docs/BRIDGE.md). The poisoned-slot test must name it."""
    name = "pool_tile_leak"
    # Its pool walk reads V at D_qk with the dtype's values: it declares the logit
    # features only, so FP8 and D_v cases are refused rather than crash it.
    features = {fam: [f for f in feats if f not in ("fp8kv", "dv")] for fam, feats in NumpyRef.features.items()}

    def _attention(self, case):
        o, lse = NumpyRef._attention(self, case)
        if not case.paged:
            return o, lse
        bs = case.block_size
        table = np.asarray(case.arrays["block_table"]).reshape(case.batch, -1).astype(np.int64)
        pool = case.v_cache.reshape(-1, case.heads_kv, case.head_dim)
        kv_head = np.array([case.kv_head(h) for h in range(case.heads_q)], dtype=np.int64)
        for b in range(case.batch):
            rows, n = case.q_rows(b), int(case.seqlen_k[b])
            if rows.stop == rows.start or n == 0:
                continue
            used = table[b, :(n + bs - 1) // bs]
            tail = (used[:, None] * bs + np.arange(bs)[None, :]).reshape(-1)[n:]  # the last block past seqlens_k
            if len(tail):
                with np.errstate(invalid="ignore"):
                    o[rows] += 0.0 * case.values_of(pool[tail]).sum(axis=0)[kv_head][None]
        return o, lse


class ZeroScaleNan(NumpyRef):
    """NaN for scale 0 (SDPA FLASH's finding), whatever the cache holds: the
    poisoned-slot test must not blame the poison for it."""
    name = "zero_scale_nan"

    def _attention(self, case):
        o, lse = NumpyRef._attention(self, case)
        if case.scale is not None and float(case.scale) == 0.0:
            o[...] = np.nan
        return o, lse


class NanRow(NumpyRef):
    """A NaN in row 0 of every output: a non-empty row's NaN must fail."""
    name = "nan_row"

    def _attention(self, case):
        o, lse = NumpyRef._attention(self, case)
        if len(o):
            o[0, 0, 0] = np.nan
        return o, lse


class LseBase2Declared(NumpyRef):
    """The LSE in base 2 while natural is declared (flex's raw HOP output)."""
    name = "lse_base2_declared_e"

    def _attention(self, case):
        o, lse = NumpyRef._attention(self, case)
        return o, lse / math.log(2)


class LseBase2Honest(LseBase2Declared):
    """The same base-2 LSE, declared: converted by the bridge, it passes."""
    name = "lse_base2_honest"
    lse_base = "2"

    def combine(self, case):  # every LSE of the call is base 2: the partials arrive in base 2
        lse_part = case.lse_part.astype(np.float64) * math.log(2)
        o, lse = NumpyRef.combine_from(lse_part, case.o_part)
        return o, lse / math.log(2)


class NoLse(NumpyRef):
    """A kernel that returns no LSE (SDPA): judged on O alone."""
    name = "no_lse"
    lse = False

    def _attention(self, case):
        return NumpyRef._attention(self, case)[0]


class NoLseOverflowNan(NoLse):
    """No LSE, and NaN outputs once the logits reach the thousands (a kernel
    without the running max): the overflow law must fail it by name."""
    name = "no_lse_overflow_nan"

    def _attention(self, case):
        o = NoLse._attention(self, case)
        if abs(case.scale_value()) > 4:
            o[:] = np.nan
        return o


class NanEmpty(NumpyRef):
    """Empty rows hold NaN (SDPA before 2.5). empty_row is set per test."""
    name = "nan_empty"
    empty_row = os.environ.get("BRIDGE_TEST_EMPTY_ROW", "nan")
    lse = False

    def _attention(self, case):
        o, lse = NumpyRef._attention(self, case)
        o[np.isneginf(lse)] = np.nan
        return o


class Crash(NumpyRef):
    """Dies in the middle of every third case of a worker."""
    name = "crash"
    calls = 0

    def _attention(self, case):
        Crash.calls += 1
        if Crash.calls % 3 == 0:
            print("crash: going down on purpose in %s" % case.line, flush=True)
            os._exit(3)
        return NumpyRef._attention(self, case)


class Hang(NumpyRef):
    """Hangs in its first case while $BRIDGE_TEST_MARKER does not exist
    (it makes the file first), so the worker after the kill runs normally."""
    name = "hang"

    def _attention(self, case):
        marker = os.environ["BRIDGE_TEST_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            print("hang: sleeping in %s" % case.line, flush=True)
            time.sleep(3600)
        return NumpyRef._attention(self, case)


class Slow(NumpyRef):
    """Every case takes a second (for the stop test)."""
    name = "slow"

    def _attention(self, case):
        time.sleep(1.0)
        return NumpyRef._attention(self, case)


class Garbage(NumpyRef):
    """Writes a line that is not the protocol's on the answer pipe."""
    name = "garbage"

    def _attention(self, case):
        os.write(int(os.environ["ATTNCHECK_BRIDGE_FDS"].split(",")[1]), b"this is not json\n")
        return NumpyRef._attention(self, case)


class NothingSupported(NumpyRef):
    """Refuses every case by name."""
    name = "nothing"

    def _attention(self, case):
        raise Unsupported("this adapter expresses no case (%s)" % case.causal)

    def combine(self, case):
        raise Unsupported("no combine here")

    def store(self, case):
        raise Unsupported("no store here")


class Raises(NumpyRef):
    """An ordinary exception in the adapter."""
    name = "raises"

    def _attention(self, case):
        return 1 / 0


class BadImport:
    name = "bad"
    families = ("prefill", "teleport")


def _sdpa_cpu(backend, name):
    """An SDPA adapter on the CPU (torch imported on its first case): its masks and
    feature biases judged without a GPU (python/tests/test_flex_eager.py)."""
    from attncheck.adapters import Sdpa
    a = Sdpa(backend, name)
    a.device = "cpu"
    return a


sdpa_math_cpu = _sdpa_cpu("MATH", "sdpa_math_cpu")
sdpa_flash_cpu = _sdpa_cpu("FLASH_ATTENTION", "sdpa_flash_cpu")
