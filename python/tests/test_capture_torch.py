"""attncheck.capture on real torch (the CPU build): a small causal transformer's
attention calls through torch.nn.functional.scaled_dot_product_attention,
recorded in one `with` block and checked with one `attncheck verify`; then the
same model with an attention that computes another question (scale 1.0 for the
default), which verify must fail and name. The fakes of test_capture.py stand in for
torch in CI (numpy only); this runs where torch is importable."""

import os
import subprocess

import pytest

import attncheck
from attncheck import __main__ as cli

torch = pytest.importorskip("torch")
F = torch.nn.functional


class Block(torch.nn.Module):
    def __init__(self, d_model=128, heads=4, kv_heads=2):
        super().__init__()
        self.h, self.kvh, self.d = heads, kv_heads, d_model // heads
        self.q = torch.nn.Linear(d_model, heads * self.d, bias=False)
        self.kv = torch.nn.Linear(d_model, 2 * kv_heads * self.d, bias=False)
        self.o = torch.nn.Linear(heads * self.d, d_model, bias=False)

    def forward(self, x, pad_mask=None):
        b, n, _ = x.shape
        q = self.q(x).view(b, n, self.h, self.d).transpose(1, 2)
        k, v = self.kv(x).view(b, n, 2, self.kvh, self.d).permute(2, 0, 3, 1, 4)
        if pad_mask is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:  # padding: a boolean mask, causal folded in
            causal = torch.ones(n, n, dtype=torch.bool).tril()
            mask = pad_mask[:, None, None, :] & causal
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        return x + self.o(a.transpose(1, 2).reshape(b, n, -1))


def _model_calls(out_dir):
    torch.manual_seed(0)
    model = torch.nn.Sequential(Block(), Block()).to(torch.bfloat16)
    x = torch.randn(2, 37, 128, dtype=torch.bfloat16)
    pad = torch.ones(2, 37, dtype=torch.bool)
    pad[1, 30:] = False
    with attncheck.capture(out_dir) as cap:
        with torch.no_grad():
            model(x)
            model[0](x, pad)
    return cap


def _verify(path):
    binary = cli.find_binary()
    if binary is None:
        pytest.skip("no attncheck binary")
    res = subprocess.run([binary, "verify", str(path)], capture_output=True, text=True, timeout=600)
    return res.returncode, res.stdout + res.stderr


def test_real_sdpa_calls_captured_and_verified(tmp_path):
    cap = _model_calls(tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 3, (files, cap.summary())
    rc, out = _verify(tmp_path)
    assert rc == 0, out[-3000:]


def test_a_wrong_attention_is_caught_and_named(tmp_path, monkeypatch):
    real = F.scaled_dot_product_attention

    # A "kernel" that applies scale 1.0 where the default 1/sqrt(D) is asked: what
    # it is asked is recorded, what it computes is not that.
    def scale_one(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        return real(query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=1.0, enable_gqa=enable_gqa)

    monkeypatch.setattr(F, "scaled_dot_product_attention", scale_one)
    _model_calls(tmp_path)
    rc, out = _verify(tmp_path)
    assert rc == 1, out[-3000:]
    assert out.count("diagnosis: matches scale=1.0") == 3, out[-3000:]
