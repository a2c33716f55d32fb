"""An FP8 K/V cache and D_v != D_qk (kv-spec) in dumps and the bridge, numpy only:
the writer tags uint8 codes with their format, the reader (and attncheck verify, when
built) takes them back, inconsistent dtypes and shapes are named errors, the bridge's
Case decodes codes and scales, and the adapters declare what they implement."""
import os
import subprocess

import numpy as np
import pytest

from attncheck import _dump
from attncheck._arrays import DumpError
from attncheck import bridge
from attncheck.adapters import NumpyRef, Sdpa, Flex

RNG = np.random.default_rng(7)


def _prefill(path, fmt="e4m3", dv=8, d=16, **kw):
    t, h, hkv = 5, 2, 1
    q = RNG.standard_normal((t, h, d)).astype(np.float16)
    k = bridge.float_to_fp8(RNG.standard_normal((t, hkv, d)), fmt)
    v = bridge.float_to_fp8(RNG.standard_normal((t, hkv, dv)), fmt)
    args = dict(op="prefill", q=q, k=k, v=v, out=np.zeros((t, h, dv), np.float16), kv_format=fmt,
                k_scale=0.5, v_scale=[0.25], causal="BR")
    args.update(kw)
    return _dump.dump(path, **args), k, v


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_fp8_dv_round_trip(tmp_path, fmt):
    p = tmp_path / "a.safetensors"
    _, k, v = _prefill(p, fmt)
    dts = _dump.tensor_dtypes(p)
    want = {"e4m3": "F8_E4M3", "e5m2": "F8_E5M2"}[fmt]
    assert dts["k"] == dts["v"] == want and dts["k_scale"] == dts["v_scale"] == "F32"
    meta, arrays = _dump.load(p)
    assert np.array_equal(arrays["k"], k) and np.array_equal(arrays["v"], v)
    assert arrays["v"].shape[-1] == 8 and arrays["out"].shape[-1] == 8
    exe = os.environ.get("ATTNCHECK")
    if exe and os.path.exists(exe):  # the C reader: the case line says the format, D_v and the scales
        r = subprocess.run([exe, "verify", str(p)], capture_output=True, text=True)
        # (the verdict needs the oracle's FP8/D_v support; the reader's case line is checked here)
        assert "Dv=8" in r.stdout and "kv=%s" % fmt in r.stdout and "kv_scale=0.5,0.25" in r.stdout, r.stdout


def test_errors_are_named(tmp_path):
    p = tmp_path / "b.safetensors"
    k16 = np.zeros((5, 1, 16), np.float16)
    with pytest.raises(DumpError, match="v: dtype U8, expected F16"):
        _dump.dump(p, op="prefill", q=np.zeros((5, 2, 16), np.float16), k=k16, v=np.zeros((5, 1, 8), np.uint8),
                   out=np.zeros((5, 2, 8), np.float16), kv_format=None)
    with pytest.raises(DumpError, match="v_scale"):
        _prefill(p, v_scale=[0.5, 0.5, 0.5])
    with pytest.raises(DumpError, match="both scales or neither"):
        _prefill(p, v_scale=None)
    with pytest.raises(DumpError, match="D_v"):
        _prefill(p, out=np.zeros((5, 2, 16), np.float16))
    with pytest.raises(DumpError, match="kv_format"):
        _prefill(p, kv_format="e3m4")


def _case(fmt="e4m3", scales=(0.5, 2.0)):
    t, hkv, d, dv = 3, 2, 8, 4
    k = bridge.float_to_fp8(RNG.standard_normal((t, hkv, d)), fmt)
    v = bridge.float_to_fp8(RNG.standard_normal((t, hkv, dv)), fmt)
    q = bridge.float_to_half(RNG.standard_normal((t, 2, d)), "bf16")
    fields = dict(line="test", dtype="bf16", batch=1, heads_q=2, heads_kv=hkv, head_dim=d, head_dim_v=dv,
                  kv_format=fmt, scale=None, causal="none", mask="none", mask_per_head=False, paged=False,
                  block_size=0, num_blocks=0, max_blocks_per_seq=0, num_splits=1, num_tokens=0,
                  slot_mapping_i64=False, total_q=t, total_k=t, seqlen_q=[t], seqlen_k=[t])
    arrays = dict(q=q, k=k, v=v, cu_seqlens_q=np.array([0, t], np.int32), cu_seqlens_k=np.array([0, t], np.int32),
                  k_scales=np.array(scales, np.float32), v_scales=np.array(scales[::-1], np.float32))
    return bridge.Case("prefill", fields, arrays)


def test_case_decodes_codes_and_scales():
    c = _case()
    assert c.fp8() and c.head_dim_v == 4 and set(c.features()) == {"fp8kv", "dv"}
    want = bridge.fp8_to_float(c.arrays["v"], "e4m3") * np.array([2.0, 0.5])[None, :, None]
    assert np.array_equal(c.kv_values(0, "v"), want)
    assert bridge.fp8_to_float(np.array([0x7E, 0x7F]), "e4m3")[0] == 448.0


class _DropsVScale(NumpyRef):
    """The classic bug: the FP8 cache's v_scale never applied."""
    name = "drops_v_scale"

    def _kv_values(self, case, b, name):
        x = case.kv_values(b, name)
        return x / case.kv_scales_per_head("v")[:, None] if name == "v" else x


def test_fake_kernels_see_fp8_dv():
    c = _case()
    o, lse = NumpyRef().prefill(c)
    assert o.shape == (3, 2, 4)
    ob, _ = _DropsVScale().prefill(c)
    # O_exact / v_scale per KV head (Hq = Hkv here: head h reads head h)
    assert np.allclose(ob * np.array([2.0, 0.5])[None, :, None], o)


def test_declared_features():
    conv = bridge.conventions(NumpyRef())
    assert "fp8kv" in conv["features"]["store"] and "dv" in conv["features"]["prefill"]
    assert "dv" not in Sdpa("FLASH_ATTENTION", "f").features["prefill"]
    assert "dv" in Sdpa("MATH", "m").features["prefill"] and "fp8kv" in Sdpa("FLASH_ATTENTION", "f").features["decode"]
    assert "fp8kv" in Flex("x").features["prefill"]

    class Bad:
        families = ("combine",)
        features = {"combine": ["fp8kv"]}

        def combine(self, case):
            pass
    with pytest.raises(ValueError, match="combine takes no fp8kv"):
        bridge.conventions(Bad())


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_store_quantises(fmt):
    x = np.array([0.0, -0.0, 1.0, 1e6, -1e6, np.nan, np.inf, 3.3], np.float32)
    codes = bridge.float_to_fp8(x, fmt, 2.0)
    back = bridge.fp8_to_float(codes, fmt)
    big = 448.0 if fmt == "e4m3" else 57344.0
    assert back[3] == big and back[4] == -big and back[6] == big and np.isnan(back[5])
    assert codes[1] == 0x80 and back[2] == 0.5
