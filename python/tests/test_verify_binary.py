"""The Python writer against the C reader: dumps made by attncheck.dump and
attncheck.capture, with outputs computed correctly here, must pass
`attncheck verify`; a dump of a classic bug must fail it.

Runs when an attncheck binary with the `verify` command is found ($ATTNCHECK,
which ctest sets to the build's binary, else PATH, else the repository's
build/); skips otherwise."""

import math
import subprocess

import numpy as np
import pytest

import attncheck
import fakes
from attncheck import __main__ as cli
from conftest import reference, unpage


def _binary():
    path = cli.find_binary()
    if path is None:
        pytest.skip("no attncheck binary")
    try:
        res = subprocess.run([path, "verify", "--help"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        pytest.skip("attncheck binary does not run: %s" % e)
    if res.returncode != 0 or "unknown command" in res.stdout + res.stderr:
        pytest.skip("this attncheck binary has no verify command")
    return path


def _verify(path, target):
    res = subprocess.run([path, "verify", "--quiet", str(target)], capture_output=True, text=True,
                         timeout=600)
    return res.returncode, res.stdout + res.stderr


def _data(rng, dtype, *shape):
    x = rng.standard_normal(shape)
    if dtype == "bf16":
        b = attncheck.bf16_from_float(x)
        return b, attncheck.bf16_to_float(b.bits).astype(np.float64)
    h = x.astype(np.float16)
    return h, h.astype(np.float64)


def _round(dtype, x):
    return attncheck.bf16_from_float(x) if dtype == "bf16" else np.asarray(x, np.float16)


def _write_calls(folder, rng):
    """Correct dumps of every op and convention the writer has."""
    # Contiguous prefill, fp16, bottom-right, LSE.
    q, qf = _data(rng, "fp16", 7, 4, 64)
    k, kf = _data(rng, "fp16", 11, 2, 64)
    v, vf = _data(rng, "fp16", 11, 2, 64)
    cu_q, cu_k = np.array([0, 3, 7], np.int32), np.array([0, 5, 11], np.int32)
    out, lse = reference(qf, kf, vf, cu_q, cu_k, "BR")
    attncheck.dump(folder / "01.safetensors", op="prefill", q=q, k=k, v=v, cu_seqlens_q=cu_q,
                   cu_seqlens_k=cu_k, out=_round("fp16", out), lse=lse.astype(np.float32), causal="BR")
    # The same call with an explicit scale 1.0: a different, equally correct call.
    out1, _ = reference(qf, kf, vf, cu_q, cu_k, "BR", 1.0)
    attncheck.dump(folder / "02.safetensors", op="prefill", q=q, k=k, v=v, cu_seqlens_q=cu_q,
                   cu_seqlens_k=cu_k, out=_round("fp16", out1), causal="BR", scale=1.0)
    # Paged prefill, bf16, HND layouts, LSE [Hq, total_q] in base 2, top-left, bool mask, scale.
    q, qf = _data(rng, "bf16", 5, 4, 64)
    kc, kcf = _data(rng, "bf16", 6, 2, 4, 64)   # HND: [blocks, Hkv, block_size, D]
    vc, vcf = _data(rng, "bf16", 6, 2, 4, 64)
    table = np.array([[3, 0, -1], [5, 1, 2]], np.int32)
    lens = np.array([6, 9], np.int32)
    cu_q = np.array([0, 2, 5], np.int32)
    mask = rng.random((1, 2 * 6 + 3 * 9)) < 0.7
    kk, cu_k = unpage(kcf, table, lens, "HND")
    vv, _ = unpage(vcf, table, lens, "HND")
    out, lse = reference(qf, kk, vv, cu_q, cu_k, "TL", 0.3, mask)
    attncheck.dump(folder / "03.safetensors", op="prefill",
                   q=attncheck.bf16_from_bits(q.bits.transpose(1, 0, 2).copy()),
                   k_cache=kc, v_cache=vc, block_table=table, seqlens_k=lens, cu_seqlens_q=cu_q,
                   mask=mask, out=attncheck.bf16_from_bits(_round("bf16", out).bits.transpose(1, 0, 2).copy()),
                   lse=(lse / math.log(2)).T.astype(np.float32).copy(), layout="HND", kv_layout="HND",
                   lse_layout="HT", lse_base="2", causal="TL", scale=0.3)
    # Decode, fp16, num_splits, fp32 output.
    q, qf = _data(rng, "fp16", 3, 4, 64)
    kc, kcf = _data(rng, "fp16", 6, 4, 2, 64)
    vc, vcf = _data(rng, "fp16", 6, 4, 2, 64)
    cu_q = np.array([0, 1, 3], np.int32)
    kk, cu_k = unpage(kcf, table, lens)
    vv, _ = unpage(vcf, table, lens)
    out, lse = reference(qf, kk, vv, cu_q, cu_k, "BR")
    attncheck.dump(folder / "04.safetensors", op="decode", q=q, k_cache=kc, v_cache=vc, block_table=table,
                   seqlens_k=lens, cu_seqlens_q=cu_q, out=out.astype(np.float32),
                   lse=lse.astype(np.float32), num_splits=2, causal="BR")
    # Combine, natural and base 2, fp16 and fp32 outputs.
    o_part = rng.standard_normal((6, 3, 64)).astype(np.float32)
    lse_part = rng.standard_normal((6, 3)).astype(np.float32)
    lse_part[2, 1] = -np.inf
    for name, base, out_dtype in (("05", "e", np.float16), ("06", "2", np.float32)):
        ln = lse_part.astype(np.float64) * (math.log(2) if base == "2" else 1.0)
        top = ln.max(axis=1, keepdims=True)
        w = np.exp(ln - top)
        total = top[:, 0] + np.log(w.sum(axis=1))
        out = (w[..., None] * o_part).sum(axis=1) / w.sum(axis=1)[:, None]
        attncheck.dump(folder / ("%s.safetensors" % name), op="combine", o_part=o_part, lse_part=lse_part,
                       out=out.astype(out_dtype),
                       lse=(total / (math.log(2) if base == "2" else 1.0)).astype(np.float32), lse_base=base)
    # Store, bf16, int64 slots with padding.
    k_new, _ = _data(rng, "bf16", 3, 2, 64)
    v_new, _ = _data(rng, "bf16", 3, 2, 64)
    kc, _ = _data(rng, "bf16", 2, 4, 2, 64)
    vc, _ = _data(rng, "bf16", 2, 4, 2, 64)
    slots = np.array([5, -1, 0], np.int64)
    kco, vco = kc.bits.copy(), vc.bits.copy()
    for t, s in enumerate(slots):
        if s >= 0:
            kco[s // 4, s % 4], vco[s // 4, s % 4] = k_new.bits[t], v_new.bits[t]
    attncheck.dump(folder / "07.safetensors", op="store", k_new=k_new, v_new=v_new, slot_mapping=slots,
                   k_cache=kc, v_cache=vc, k_cache_out=attncheck.bf16_from_bits(kco),
                   v_cache_out=attncheck.bf16_from_bits(vco))


def _capture_calls(folder, rng, monkeypatch):
    """Dumps recorded by capture from the numpy stand-ins (their outputs are
    float64 attention rounded to fp16)."""
    torch_f = fakes.install_torch(monkeypatch)
    fa = fakes.install_flash_attn(monkeypatch)
    fi = fakes.install_flashinfer(monkeypatch)
    f16 = lambda *s: rng.standard_normal(s).astype(np.float16)  # noqa: E731
    with attncheck.capture(folder, sdpa=torch_f, flash_attn=fa, flashinfer=fi) as cap:
        torch_f.scaled_dot_product_attention(f16(2, 4, 5, 64), f16(2, 2, 9, 64), f16(2, 2, 9, 64),
                                             is_causal=True, enable_gqa=True)
        pad = np.ones((2, 1, 1, 9), bool)
        pad[1, ..., 6:] = False
        torch_f.scaled_dot_product_attention(f16(2, 4, 5, 64), f16(2, 4, 9, 64), f16(2, 4, 9, 64),
                                             attn_mask=pad, scale=0.2)
        q, k = f16(7, 4, 64), f16(9, 2, 64)
        fa.flash_attn_varlen_func(q, k, f16(9, 2, 64), np.array([0, 3, 3, 7], np.int32),
                                  np.array([0, 2, 5, 9], np.int32), 4, 4, causal=True,
                                  return_attn_probs=True)
        cache = f16(12, 2, 2, 4, 64)  # HND pages [pages, 2, Hkv, page, D]
        pre = fi.BatchPrefillWithPagedKVCacheWrapper(None, "HND")
        pre.plan(np.array([0, 3, 7]), np.array([0, 3, 5]), np.array([7, 2, 9, 0, 11]), np.array([2, 4]),
                 4, 2, 64, 4, causal=True)
        pre.run(f16(7, 4, 64), cache, return_lse=True)
        fi.merge_state(f16(3, 2, 64), rng.standard_normal((3, 2)).astype(np.float32),
                       f16(3, 2, 64), rng.standard_normal((3, 2)).astype(np.float32))
    assert len(cap.records) == 5, cap.summary()


def test_correct_dumps_pass(tmp_path, rng, monkeypatch):
    binary = _binary()
    _write_calls(tmp_path, rng)
    _capture_calls(tmp_path / "captured", rng, monkeypatch)
    for target in sorted(tmp_path.glob("*.safetensors")) + sorted((tmp_path / "captured").glob("*")):
        status, text = _verify(binary, target)
        assert status == 0, "%s:\n%s" % (target.name, text)


def test_default_scale_bug_fails(tmp_path, rng):
    binary = _binary()
    q, qf = _data(rng, "fp16", 6, 2, 96)
    k, kf = _data(rng, "fp16", 20, 1, 96)
    out1, _ = reference(qf, kf, kf, [0, 6], [0, 20], "BR", 1.0)
    # Computed with scale 1.0 but declared default: the wrapper bug.
    attncheck.dump(tmp_path / "bug.safetensors", op="prefill", q=q, k=k, v=k, out=_round("fp16", out1),
                   causal="BR", scale=None)
    status, text = _verify(binary, tmp_path / "bug.safetensors")
    assert status == 1, text
