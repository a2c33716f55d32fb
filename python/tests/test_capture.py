"""attncheck.capture driven by numpy stand-ins of the libraries (fakes.py):
the wrapping and restoring, and that every recorded file describes the call
that was made (the reference attention of the dump's tensors, read in the
dump's conventions, gives the recorded output)."""

import math
import os
import sys
import subprocess
import types

import numpy as np
import pytest

import attncheck
from attncheck import __main__ as cli
import fakes
from conftest import f16, reference, unpage


def _capture(tmp_path, monkeypatch, **kw):
    torch_f = fakes.install_torch(monkeypatch)
    fa = fakes.install_flash_attn(monkeypatch)
    fi = fakes.install_flashinfer(monkeypatch)
    opts = dict(sdpa=torch_f, flash_attn=fa, flashinfer=fi)
    opts.update(kw)
    return torch_f, fa, fi, attncheck.capture(tmp_path / "dumps", **opts)


def _files(tmp_path):
    folder = tmp_path / "dumps"
    return sorted(os.listdir(folder)) if folder.exists() else []


def _load(tmp_path, name):
    return attncheck.load(tmp_path / "dumps" / name)


def _check_against_reference(meta, t, tol=2e-3):
    """The recorded out (and lse) agree with the reference of the recorded inputs."""
    if meta["layout"] == "HND":
        t = dict(t, q=t["q"].transpose(1, 0, 2), out=t["out"].transpose(1, 0, 2))
    if "k_cache" in t:
        k, cu_k = unpage(t["k_cache"], t["block_table"], t["seqlens_k"], meta["kv_layout"])
        v, _ = unpage(t["v_cache"], t["block_table"], t["seqlens_k"], meta["kv_layout"])
    else:
        k, v = t["k"], t["v"]
        cu_k = t.get("cu_seqlens_k", np.array([0, k.shape[0]]))
    cu_q = t.get("cu_seqlens_q", np.array([0, t["q"].shape[0]]))
    scale = None if meta["scale"] == "default" else meta["scale"]
    out, lse = reference(t["q"], k, v, cu_q, cu_k, meta["causal"], scale, t.get("mask"),
                         window=(meta.get("window_left", -1), meta.get("window_right", -1)),
                         softcap=meta.get("softcap", 0.0), alibi=t.get("alibi_slopes"))
    assert np.allclose(t["out"].astype(np.float64), out, atol=tol, rtol=tol)
    if "lse" in t:
        got = t["lse"].T if meta["lse_layout"] == "HT" else t["lse"]
        want = lse / math.log(2) if meta["lse_base"] == "2" else lse
        if meta["empty_row"] == "zero_posinf":
            want = np.where(np.isneginf(want), np.inf, want)
        assert np.allclose(got, want, atol=1e-4, rtol=1e-5, equal_nan=False)


# --- wrapping and restoring ---------------------------------------------------------

def test_patch_and_restore(tmp_path, monkeypatch):
    torch_f, fa, fi, cap = _capture(tmp_path, monkeypatch)
    user = types.ModuleType("fake_user_model")
    user.scaled_dot_product_attention = torch_f.scaled_dot_product_attention
    user.varlen = fa.flash_attn_varlen_func
    monkeypatch.setitem(sys.modules, "fake_user_model", user)
    originals = {"sdpa": fakes.sdpa, "varlen": fakes.flash_attn_varlen_func,
                 "run": vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["run"],
                 "plan": vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["plan"],
                 "merge": fakes.merge_state}
    relu = torch_f.relu
    with cap:
        assert torch_f.scaled_dot_product_attention is not originals["sdpa"]
        assert user.scaled_dot_product_attention is torch_f.scaled_dot_product_attention
        assert user.varlen is fa.flash_attn_varlen_func is not originals["varlen"]
        assert fakes.BatchPrefillWithPagedKVCacheWrapper.run is not originals["run"]
        begin = vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["begin_forward"]
        assert begin is not originals["plan"]
        assert vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["plan"] is not originals["plan"]
        assert sys.modules["fake_flashinfer.cascade"].merge_state is fi.merge_state
        assert torch_f.relu is relu  # only attention is wrapped
        assert torch_f.scaled_dot_product_attention.__name__ == "sdpa"
    assert torch_f.scaled_dot_product_attention is originals["sdpa"]
    assert user.scaled_dot_product_attention is originals["sdpa"]
    assert user.varlen is fa.flash_attn_varlen_func is originals["varlen"]
    assert vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["run"] is originals["run"]
    assert vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["plan"] is originals["plan"]
    assert vars(fakes.BatchPrefillWithPagedKVCacheWrapper)["begin_forward"] is originals["plan"]
    assert fi.merge_state is sys.modules["fake_flashinfer.cascade"].merge_state is originals["merge"]


def test_restored_when_the_block_raises(tmp_path, monkeypatch, rng):
    torch_f, fa, _, cap = _capture(tmp_path, monkeypatch)
    with pytest.raises(KeyError, match="model failed"):
        with cap:
            torch_f.scaled_dot_product_attention(f16(rng, 1, 2, 3, 8), f16(rng, 1, 2, 3, 8),
                                                 f16(rng, 1, 2, 3, 8))
            raise KeyError("model failed")
    assert torch_f.scaled_dot_product_attention is fakes.sdpa
    assert fa.flash_attn_with_kvcache is fakes.flash_attn_with_kvcache
    assert _files(tmp_path) == ["0000-prefill.safetensors"]  # what was recorded stays


def test_a_failing_call_propagates_and_records_nothing(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    x = f16(rng, 1, 2, 3, 8)
    original = torch_f.scaled_dot_product_attention
    with cap:
        with pytest.raises(RuntimeError, match="is_causal"):
            torch_f.scaled_dot_product_attention(x, x, x, attn_mask=np.ones((3, 3), bool), is_causal=True)
        assert torch_f.scaled_dot_product_attention is not original
    assert _files(tmp_path) == [] and cap.records == [] and cap.skipped == []


def test_libraries_switched_off_or_absent(tmp_path, monkeypatch):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch, flash_attn=False, flashinfer=False)
    original = torch_f.scaled_dot_product_attention
    with cap:
        assert sys.modules["fake_flash_attn"].flash_attn_varlen_func is fakes.flash_attn_varlen_func
        assert torch_f.scaled_dot_product_attention is not original
    # Without the real libraries installed, True finds nothing to wrap and says so.
    if not any(m in sys.modules or _importable(m) for m in ("torch", "flash_attn", "flashinfer")):
        with attncheck.capture(tmp_path / "none") as cap2:
            pass
        assert cap2.patched == [] and "no attention library" in cap2.summary()


def _importable(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None


def test_nested_calls_record_the_outer_one_only(tmp_path, monkeypatch, rng):
    torch_f, fa, _, cap = _capture(tmp_path, monkeypatch)
    real_varlen = fa.flash_attn_varlen_func

    def varlen_via_sdpa(*args, **kwargs):
        torch_f.scaled_dot_product_attention(f16(rng, 1, 1, 2, 8), f16(rng, 1, 1, 2, 8),
                                             f16(rng, 1, 1, 2, 8))
        return real_varlen(*args, **kwargs)

    fa.flash_attn_varlen_func = varlen_via_sdpa
    q, k = f16(rng, 4, 2, 8), f16(rng, 4, 2, 8)
    cu = np.array([0, 4], np.int32)
    with cap:
        fa.flash_attn_varlen_func(q, k, k, cu, cu, 4, 4)
    assert _files(tmp_path) == ["0000-prefill.safetensors"]
    assert cap.records[0]["library"] == "flash_attn"


def test_refuses_a_folder_with_dumps_unless_appending(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    x = f16(rng, 1, 2, 3, 8)
    with cap:
        torch_f.scaled_dot_product_attention(x, x, x)
    with pytest.raises(FileExistsError):
        with attncheck.capture(tmp_path / "dumps", sdpa=torch_f, flash_attn=False, flashinfer=False):
            pass
    assert torch_f.scaled_dot_product_attention is fakes.sdpa
    with attncheck.capture(tmp_path / "dumps", sdpa=torch_f, flash_attn=False, flashinfer=False,
                           append=True):
        torch_f.scaled_dot_product_attention(x, x, x)
    assert _files(tmp_path) == ["0000-prefill.safetensors", "0001-prefill.safetensors"]


def test_bad_limits_rejected():
    with pytest.raises(ValueError, match="max_bytes"):
        attncheck.capture("x", max_bytes=-1)
    with pytest.raises(ValueError, match="max_calls"):
        attncheck.capture("x", max_calls=1.5)


# --- SDPA ------------------------------------------------------------------------------

def test_sdpa_gqa_causal_top_left(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    q, k, v = f16(rng, 2, 4, 3, 8), f16(rng, 2, 2, 5, 8), f16(rng, 2, 2, 5, 8)
    with cap:
        out = torch_f.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert np.array_equal(out, fakes.sdpa(q, k, v, is_causal=True, enable_gqa=True))  # unchanged
    assert _files(tmp_path) == ["0000-prefill.safetensors"]
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert (meta["op"], meta["causal"], meta["scale"], meta["library"], meta["library_version"]) == (
        "prefill", "TL", "default", "torch.sdpa", "9.9.9+fake")
    assert t["q"].shape == (6, 4, 8) and t["k"].shape == (10, 2, 8)
    assert t["cu_seqlens_q"].tolist() == [0, 3, 6] and t["cu_seqlens_k"].tolist() == [0, 5, 10]
    assert np.array_equal(t["q"][3:6, 1], q[1, 1])  # sequence 1, head 1
    assert np.array_equal(t["v"][5:10, 0], v[1, 0])
    assert np.array_equal(t["out"][0:3, 3], out[0, 3])
    _check_against_reference(meta, t)


@pytest.mark.parametrize("scale,want", [(None, "default"), (1.0, 1.0), (0.0, 0.0), (0.3, 0.3)])
def test_sdpa_scale(tmp_path, monkeypatch, rng, scale, want):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    q = f16(rng, 1, 2, 3, 8)
    with cap:
        torch_f.scaled_dot_product_attention(q, q, q, None, 0.0, False, scale)
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert meta["scale"] == want
    _check_against_reference(meta, t)


def test_sdpa_masks(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    q, k = f16(rng, 2, 3, 4, 8), f16(rng, 2, 3, 6, 8)
    padding = np.ones((2, 1, 1, 6), bool)
    padding[1, ..., 4:] = False                     # [B, 1, 1, S]: shared by heads and queries
    bias = f16(rng, 2, 3, 4, 6)                     # [B, H, L, S] additive, per head
    bias[0, 1, 2, :] = -np.inf                      # an empty row
    square = rng.integers(0, 2, (4, 6)).astype(bool)  # [L, S]
    with cap:
        torch_f.scaled_dot_product_attention(q, k, k, attn_mask=padding)
        torch_f.scaled_dot_product_attention(q, k, k, attn_mask=bias)
        torch_f.scaled_dot_product_attention(q, k, k, square)
    assert len(_files(tmp_path)) == 3
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert meta["mask"] == "bool" and t["mask"].shape == (1, 2 * 4 * 6)
    assert t["mask"][0, 24:].reshape(4, 6)[:, 4:].sum() == 0
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, "0001-prefill.safetensors")
    assert meta["mask"] == "additive" and t["mask"].dtype == np.float32 and t["mask"].shape == (3, 48)
    assert np.array_equal(t["mask"][2, 24:].reshape(4, 6), bias[1, 2].astype(np.float32))
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, "0002-prefill.safetensors")
    assert t["mask"].shape == (1, 48) and np.array_equal(t["mask"][0, :24].reshape(4, 6), square)
    _check_against_reference(meta, t)


def test_sdpa_three_dims_and_mqa(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    with cap:
        torch_f.scaled_dot_product_attention(f16(rng, 4, 3, 8), f16(rng, 4, 5, 8), f16(rng, 4, 5, 8))
        torch_f.scaled_dot_product_attention(f16(rng, 1, 4, 3, 8), f16(rng, 1, 1, 5, 8),
                                             f16(rng, 1, 1, 5, 8))
    for name in _files(tmp_path):
        meta, t = _load(tmp_path, name)
        _check_against_reference(meta, t)
    assert _load(tmp_path, "0001-prefill.safetensors")[1]["k"].shape == (5, 1, 8)


def test_sdpa_skips_what_the_format_cannot_hold(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    x32 = rng.standard_normal((1, 2, 3, 8)).astype(np.float32)
    x = f16(rng, 1, 2, 3, 8)
    with cap:
        out = torch_f.scaled_dot_product_attention(x32, x32, x32)
        torch_f.scaled_dot_product_attention(x, x, x, dropout_p=0.1)
        torch_f.scaled_dot_product_attention(x, x, f16(rng, 1, 2, 3, 16))
        torch_f.scaled_dot_product_attention(x, x, x)
    assert out.dtype == np.float32  # the call itself ran normally
    assert _files(tmp_path) == ["0003-prefill.safetensors"]
    reasons = [s["reason"] for s in cap.skipped]
    assert [s["index"] for s in cap.skipped] == [0, 1, 2]
    assert "dtype F32" in reasons[0] and "dropout_p" in reasons[1] and "head dims" in reasons[2]
    text = cap.summary()
    assert "1 call recorded" in text and "3 skipped" in text and "skipped 0001" in text


def test_strict_raises(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch, strict=True)
    x32 = rng.standard_normal((1, 2, 3, 8)).astype(np.float32)
    with pytest.raises(Exception, match="dtype F32"):
        with cap:
            torch_f.scaled_dot_product_attention(x32, x32, x32)
    assert torch_f.scaled_dot_product_attention is fakes.sdpa


def test_max_calls_and_max_bytes(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch, max_calls=2)
    x = f16(rng, 1, 2, 3, 8)
    with cap:
        for _ in range(30):
            torch_f.scaled_dot_product_attention(x, x, x)
    assert len(_files(tmp_path)) == 2 and len(cap.skipped) == 28
    assert "max_calls (2) reached" in cap.skipped[0]["reason"]
    assert "8 x max_calls (2) reached" in cap.summary()  # 20 listed, the rest counted

    torch_f, _, _, cap = _capture(tmp_path / "b", monkeypatch)
    with cap:
        torch_f.scaled_dot_product_attention(x, x, x)
    one_file = cap.bytes_written
    torch_f, _, _, cap = _capture(tmp_path / "c", monkeypatch, max_bytes=2 * one_file)
    with cap:
        for _ in range(5):
            torch_f.scaled_dot_product_attention(x, x, x)
    assert len(cap.records) == 2 and cap.bytes_written <= 2 * one_file
    assert "max_bytes" in cap.skipped[0]["reason"]


# --- flash_attn ---------------------------------------------------------------------------

def test_flash_attn_varlen_contiguous_with_lse(tmp_path, monkeypatch, rng):
    _, fa, _, cap = _capture(tmp_path, monkeypatch)
    q, k, v = f16(rng, 7, 4, 8), f16(rng, 9, 2, 8), f16(rng, 9, 2, 8)
    cu_q, cu_k = np.array([0, 3, 3, 7], np.int32), np.array([0, 2, 5, 9], np.int32)
    with cap:
        fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 4, 4, causal=True, return_attn_probs=True)
        fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 4, 4, softmax_scale=1.0)
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert (meta["causal"], meta["scale"], meta["lse_layout"], meta["empty_row"], meta["library"],
            meta["library_version"]) == ("BR", "default", "HT", "zero_posinf", "flash_attn", "2.6.3")
    assert t["lse"].shape == (4, 7)
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, "0001-prefill.safetensors")
    assert meta["scale"] == 1.0 and meta["causal"] == "none" and "lse" not in t
    _check_against_reference(meta, t)


def test_flash_attn_varlen_skips(tmp_path, monkeypatch, rng):
    _, fa, _, cap = _capture(tmp_path, monkeypatch)
    q = f16(rng, 4, 2, 8)
    cu = np.array([0, 4], np.int32)
    with cap:
        fa.flash_attn_varlen_func(q, q, q, cu, cu, 4, 4, dropout_p=0.1)
        # flash-attn's ALiBi (-slope*|d|) differs from the contract's past the diagonal: not recorded
        fa.flash_attn_varlen_func(q, q, q, cu, cu, 4, 4, alibi_slopes=np.ones(2, np.float32))
        fa.flash_attn_varlen_func(q, q, q, cu, cu, 4, 4, deterministic=True)
    assert [s["index"] for s in cap.skipped] == [0, 1]
    assert "alibi_slopes without causal" in cap.skipped[1]["reason"]
    assert _files(tmp_path) == ["0002-prefill.safetensors"]


def test_flash_attn_features_recorded(tmp_path, monkeypatch, rng):
    # window_size, softcap and (causal) alibi_slopes are written in the dump, and the recorded
    # outputs are the contract's answer to the recorded call.
    _, fa, _, cap = _capture(tmp_path, monkeypatch)
    q, k, v = f16(rng, 7, 4, 8), f16(rng, 9, 2, 8), f16(rng, 9, 2, 8)
    cu_q, cu_k = np.array([0, 3, 7], np.int32), np.array([0, 4, 9], np.int32)
    slopes = np.array([0.5, 0.25, 0.125, 0.0625], np.float32)
    with cap:
        fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 4, 5, window_size=(2, 1))
        fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 4, 5, causal=True, softcap=3.0, alibi_slopes=slopes,
                                  window_size=(3, -1), return_attn_probs=True)
        fa.flash_attn_varlen_func(q, k, v, cu_q, cu_k, 4, 5, alibi_slopes=slopes[None].repeat(2, 0),
                                  window_size=(-1, 0))
    assert cap.skipped == []
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert (meta["window_left"], meta["window_right"]) == (2, 1) and "softcap" not in meta
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, "0001-prefill.safetensors")
    assert (meta["window_left"], "window_right" in meta, meta["softcap"]) == (3, False, 3.0)
    assert t["alibi_slopes"].tolist() == slopes.tolist()
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, "0002-prefill.safetensors")  # [B, H] slopes, equal per sequence
    assert meta["window_right"] == 0 and t["alibi_slopes"].shape == (4,)
    _check_against_reference(meta, t)
    binary = cli.find_binary()
    if binary is not None:  # attncheck's own reader and oracle agree: every recorded call passes
        res = subprocess.run([binary, "verify", "--quiet", str(tmp_path / "dumps")], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_flash_attn_kvcache_features_recorded(tmp_path, monkeypatch, rng):
    _, fa, _, cap = _capture(tmp_path, monkeypatch)
    kc, vc = f16(rng, 6, 4, 2, 8), f16(rng, 6, 4, 2, 8)
    table = np.array([[4, 1, 3], [0, 5, 2]], np.int32)
    q = f16(rng, 2, 1, 4, 8)
    with cap:
        fa.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=np.array([9, 5], np.int32), block_table=table,
                                   causal=True, window_size=(4, 0), softcap=2.5,
                                   alibi_slopes=np.array([1, 0.5, 0.25, 0.125], np.float32))
    meta, t = _load(tmp_path, "0000-decode.safetensors")
    assert (meta["window_left"], meta["window_right"], meta["softcap"]) == (4, 0, 2.5)
    _check_against_reference(meta, t)


def test_flash_attn_paged_varlen_and_compaction(tmp_path, monkeypatch, rng):
    _, fa, _, cap = _capture(tmp_path, monkeypatch)
    kc, vc = f16(rng, 40, 4, 2, 8), f16(rng, 40, 4, 2, 8)
    table = np.array([[30, 7, 12], [5, 33, 0]], np.int32)
    cu_k = np.array([0, 9, 14], np.int32)
    cu_q = np.array([0, 1, 3], np.int32)
    q = f16(rng, 3, 4, 8)
    with cap:
        fa.flash_attn_varlen_func(q, kc, vc, cu_q, cu_k, 2, 9, causal=True, block_table=table)
    meta, t = _load(tmp_path, "0000-decode.safetensors")
    assert t["k_cache"].shape == (5, 4, 2, 8)  # the 5 blocks read, not the pool of 40
    assert t["seqlens_k"].tolist() == [9, 5]
    assert t["block_table"].tolist() == [[3, 1, 2], [0, 4, -1]]
    _check_against_reference(meta, t)
    k_full, _ = unpage(kc, table, [9, 5])
    k_dump, _ = unpage(t["k_cache"], t["block_table"], t["seqlens_k"])
    assert np.array_equal(k_full, k_dump)


def test_flash_attn_with_kvcache(tmp_path, monkeypatch, rng):
    _, fa, _, cap = _capture(tmp_path, monkeypatch, compact_cache=False)
    batch, lq, hq, hkv, d = 2, 1, 4, 2, 8
    kc, vc = f16(rng, 10, 4, hkv, d), f16(rng, 10, 4, hkv, d)
    table = np.array([[3, 1, 0], [2, 9, 8]], np.int32)
    lens = np.array([5, 8], np.int32)
    knew, vnew = f16(rng, batch, 2, hkv, d), f16(rng, batch, 2, hkv, d)
    q = f16(rng, batch, lq, hq, d)
    flat = np.zeros((batch, 12, hkv, d), np.float16)
    flat[:] = f16(rng, batch, 12, hkv, d)
    with cap:
        fa.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, block_table=table, causal=True,
                                   num_splits=3, return_softmax_lse=True)
        fa.flash_attn_with_kvcache(q, kc, vc, knew, vnew, cache_seqlens=lens, block_table=table,
                                   causal=True)
        fa.flash_attn_with_kvcache(f16(rng, batch, 3, hq, d), flat, flat.copy(), cache_seqlens=7)
        fa.flash_attn_with_kvcache(q, kc, vc, cache_seqlens=lens, block_table=table,
                                   rotary_cos=np.ones(4, np.float32), rotary_sin=np.ones(4, np.float32))
    names = _files(tmp_path)
    assert names == ["0000-decode.safetensors", "0001-decode.safetensors", "0002-prefill.safetensors"]
    meta, t = _load(tmp_path, names[0])
    assert t["num_splits"] == 3 and meta["lse_layout"] == "TH" and t["k_cache"].shape[0] == 10
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, names[1])
    assert t["seqlens_k"].tolist() == [7, 10] and "appended" in meta["note"]
    _check_against_reference(meta, t)
    meta, t = _load(tmp_path, names[2])
    assert t["block_table"].tolist() == [[0], [1]] and t["seqlens_k"].tolist() == [7, 7]
    assert meta["causal"] == "none"
    _check_against_reference(meta, t)
    assert "rotary_cos" in cap.skipped[0]["reason"]


# --- flashinfer ----------------------------------------------------------------------------

@pytest.mark.parametrize("kv_layout", ["NHD", "HND"])
def test_flashinfer_prefill_and_decode(tmp_path, monkeypatch, rng, kv_layout):
    _, _, fi, cap = _capture(tmp_path, monkeypatch)
    page, hq, hkv, d = 4, 4, 2, 8
    pages_shape = (12, 2, page, hkv, d) if kv_layout == "NHD" else (12, 2, hkv, page, d)
    cache = f16(rng, *pages_shape)
    indptr = np.array([0, 3, 5], np.int32)
    indices = np.array([7, 2, 9, 0, 11], np.int32)
    last = np.array([2, 4], np.int32)          # 10 and 8 keys
    qo = np.array([0, 3, 7], np.int32)
    pre = fi.BatchPrefillWithPagedKVCacheWrapper(None, kv_layout)
    dec = fi.BatchDecodeWithPagedKVCacheWrapper(None, kv_layout)
    with cap:
        pre.plan(qo, indptr, indices, last, hq, hkv, d, page, causal=True)
        pre.run(f16(rng, 7, hq, d), cache, return_lse=True)
        pre.begin_forward(qo, indptr, indices, last, hq, hkv, d, page, sm_scale=0.25)
        pre.run(f16(rng, 7, hq, d), (cache[:, 0], cache[:, 1]))
        dec.plan(indptr, indices, last, hq, hkv, d, page)
        dec.run(f16(rng, 2, hq, d), cache, return_lse=True)
    names = _files(tmp_path)
    assert names == ["0000-decode.safetensors", "0001-prefill.safetensors", "0002-decode.safetensors"]
    for name in names:
        meta, t = _load(tmp_path, name)
        assert meta["kv_layout"] == kv_layout and meta["lse_base"] == "2"
        assert meta["library"] == "flashinfer" and meta["library_version"] == "0.2.5"
        assert t["seqlens_k"].tolist() == [10, 8]
        _check_against_reference(meta, t)
    meta, _ = _load(tmp_path, names[1])
    assert meta["scale"] == 0.25 and meta["causal"] == "none"


def test_flashinfer_window_and_softcap_recorded(tmp_path, monkeypatch, rng):
    _, _, fi, cap = _capture(tmp_path, monkeypatch)
    page, hq, hkv, d = 4, 4, 2, 8
    cache = f16(rng, 12, 2, page, hkv, d)
    indptr, indices, last = np.array([0, 3, 5], np.int32), np.array([7, 2, 9, 0, 11], np.int32), np.array([2, 4])
    qo = np.array([0, 3, 7], np.int32)
    pre = fi.BatchPrefillWithPagedKVCacheWrapper(None)
    dec = fi.BatchDecodeWithPagedKVCacheWrapper(None)
    with cap:
        pre.plan(qo, indptr, indices, last, hq, hkv, d, page, causal=True, window_left=3, logits_soft_cap=2.0)
        pre.run(f16(rng, 7, hq, d), cache, return_lse=True)
        dec.plan(indptr, indices, last, hq, hkv, d, page, window_left=5, logits_soft_cap=1.5)
        dec.run(f16(rng, 2, hq, d), cache, return_lse=True)
    assert cap.skipped == []
    for name, w, c in [("0000-decode.safetensors", 3, 2.0), ("0001-decode.safetensors", 5, 1.5)]:
        meta, t = _load(tmp_path, name)
        assert (meta["window_left"], "window_right" in meta, meta["softcap"]) == (w, False, c)
        _check_against_reference(meta, t)


def test_flashinfer_custom_mask_and_run_without_plan(tmp_path, monkeypatch, rng):
    _, _, fi, cap = _capture(tmp_path, monkeypatch)
    cache = f16(rng, 4, 2, 4, 1, 8)
    indptr, indices, last = np.array([0, 2]), np.array([3, 1]), np.array([3])
    qo = np.array([0, 2])
    mask = rng.integers(0, 2, 2 * 7).astype(bool)
    early = fi.BatchPrefillWithPagedKVCacheWrapper(None)
    early.plan(qo, indptr, indices, last, 2, 1, 8, 4)  # before the capture: unknown inside
    pre = fi.BatchPrefillWithPagedKVCacheWrapper(None)
    with cap:
        pre.plan(qo, indptr, indices, last, 2, 1, 8, 4, custom_mask=mask)
        pre.run(f16(rng, 2, 2, 8), cache)
        early.run(f16(rng, 2, 2, 8), cache)
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert meta["mask"] == "bool" and np.array_equal(t["mask"][0], mask)
    _check_against_reference(meta, t)
    assert "plan() ran before the capture" in cap.skipped[0]["reason"]


def test_flashinfer_merge_state(tmp_path, monkeypatch, rng):
    _, _, fi, cap = _capture(tmp_path, monkeypatch)
    va, vb = f16(rng, 3, 2, 8), f16(rng, 3, 2, 8)
    sa = rng.standard_normal((3, 2)).astype(np.float32)
    sb = rng.standard_normal((3, 2)).astype(np.float32)
    v4 = f16(rng, 3, 5, 2, 8)
    s4 = rng.standard_normal((3, 5, 2)).astype(np.float32)
    with cap:
        v, s = sys.modules["fake_flashinfer.cascade"].merge_state(va, sa, vb, sb)
        fi.merge_states(v4, s4)
    meta, t = _load(tmp_path, "0000-combine.safetensors")
    assert meta["lse_base"] == "2" and meta["out_dtype"] == "same"
    assert t["o_part"].shape == (6, 2, 8) and t["lse_part"].shape == (6, 2)
    assert np.array_equal(t["o_part"][1 * 2 + 1, 1], vb[1, 1].astype(np.float32))
    assert np.array_equal(t["out"], v.reshape(6, 8)) and np.array_equal(t["lse"], s.reshape(6))
    meta, t = _load(tmp_path, "0001-combine.safetensors")
    assert t["o_part"].shape == (6, 5, 8)
    assert np.array_equal(t["o_part"][2 * 2 + 1, 4], v4[2, 4, 1].astype(np.float32))
    assert np.array_equal(t["lse_part"][2 * 2 + 1], s4[2, :, 1])


def test_summary_lists_files(tmp_path, monkeypatch, rng):
    torch_f, _, _, cap = _capture(tmp_path, monkeypatch)
    x = f16(rng, 1, 2, 3, 8)
    with cap:
        torch_f.scaled_dot_product_attention(x, x, x, is_causal=True)
    text = cap.summary()
    assert "0000-prefill.safetensors  torch.sdpa prefill causal=TL 3x2x8" in text
    assert cap.records[0]["shapes"]["q"] == (3, 2, 8)


# --- with torch, when it is installed -----------------------------------------------------

def test_torch_sdpa_bf16(tmp_path, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    original = F.scaled_dot_product_attention
    q = torch.randn(2, 4, 5, 16, dtype=torch.bfloat16)
    k = torch.randn(2, 2, 7, 16, dtype=torch.bfloat16)
    with attncheck.capture(tmp_path / "dumps", flash_attn=False, flashinfer=False) as cap:
        out = F.scaled_dot_product_attention(q, k, k, is_causal=True, enable_gqa=True)
    assert F.scaled_dot_product_attention is original
    meta, t = _load(tmp_path, "0000-prefill.safetensors")
    assert meta["library"] == "torch.sdpa" and meta["library_version"] == str(torch.__version__)
    assert attncheck.tensor_dtypes(tmp_path / "dumps" / "0000-prefill.safetensors")["q"] == "BF16"
    want = q.permute(0, 2, 1, 3).reshape(10, 4, 16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(t["q"], want)
    got_out = out.permute(0, 2, 1, 3).reshape(10, 4, 16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(t["out"], got_out)
    _, t32 = attncheck.load(tmp_path / "dumps" / "0000-prefill.safetensors", bf16="float32")
    _check_against_reference(meta, t32, tol=2e-2)
    assert len(cap.records) == 1


def test_torch_tensor_dump(tmp_path):
    torch = pytest.importorskip("torch")
    q = torch.randn(3, 2, 8, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(4, 1, 8, dtype=torch.bfloat16)
    attncheck.dump(tmp_path / "t.safetensors", op="prefill", q=q, k=k, v=k, out=q.detach() * 2,
                   scale=torch.tensor(0.5).item())
    meta, t = attncheck.load(tmp_path / "t.safetensors")
    assert np.array_equal(t["q"], q.detach().view(torch.int16).numpy().view(np.uint16))
    assert meta["scale"] == 0.5
