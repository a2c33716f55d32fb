"""The flashinfer adapter's plumbing (CSR page lists, last-page lengths, ragged
indptrs, custom masks for what the causal flag cannot say, LSE in base 2 in and
out of merge_states) judged by attncheck against a CPU stand-in written from
FlashInfer's documented semantics (fake_flashinfer_torch.py). The library itself
runs on the GPU host (scripts/bridge-gpu.sh flashinfer).

Runs where torch is importable and an attncheck binary is found; skips otherwise
(CI installs numpy only)."""

import os
import subprocess
import sys

import pytest

from attncheck import __main__ as cli

pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))


def _attncheck(args, adapter):
    path = cli.find_binary()
    if path is None:
        pytest.skip("no attncheck binary")
    env = dict(os.environ, ATTNCHECK_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([path] + args + ["--kernel", "py:flashinfer_cpu:" + adapter],
                         capture_output=True, text=True, timeout=1200, env=env)
    return res.returncode, res.stdout + res.stderr


def _sweep(adapter, family):
    return _attncheck(["sweep", family], adapter)


@pytest.mark.parametrize("family", ["prefill", "decode", "combine"])
def test_flashinfer_adapter_on_the_stand_in_passes(family):
    rc, out = _sweep("flashinfer_cpu", family)
    assert rc == 0, out[-3000:]
    assert "unsupported" not in out.splitlines()[-1] or family == "prefill", out[-500:]


def test_lse_declared_natural_is_caught():
    # The same adapter declaring base e while FlashInfer's LSE is base 2: must fail, named.
    rc, out = _sweep("flashinfer_cpu_base_e", "prefill")
    assert rc == 1, out[-2000:]
    assert "diagnosis: matches lse_base=2" in out, out[-2000:]


# ---- windows and softcap: window_left (bottom-right, left side only) and logits_soft_cap ----

def _replay(path, adapter="flashinfer_cpu"):
    return _attncheck(["replay", path], adapter)


# window (left, right) with the causal mode: FlashInfer's window_left where it can say it
# (right unbounded, under the causal bound, or 0 as the causal flag), custom_mask otherwise.
@pytest.mark.parametrize("family,causal,wl,wr", [("prefill", "BR", 5, 0), ("prefill", "none", 3, -1),
                                                 ("prefill", "none", 3, 0), ("prefill", "none", 3, 4),
                                                 ("prefill", "TL", 2, -1), ("decode", "BR", 6, -1)])
def test_flashinfer_window_and_softcap(tmp_path, family, causal, wl, wr):
    from test_bridge_features import _DECODE, _PREFILL, _case
    feats = "window_left %d\n%ssoftcap 0x1.4p+2\n" % (wl, "window_right %d\n" % wr if wr >= 0 else "")
    path = _case(tmp_path, family, _DECODE if family == "decode" else _PREFILL, feats, causal)
    rc, out = _replay(path)
    assert rc == 0 and "result: PASS" in out, out[-3000:]


@pytest.mark.parametrize("features,why", [("alibi_slopes 0x1p-1,0x1p-2,0x1p-3,0x1p-4\n", "does not implement alibi"),
                                          ("sinks -inf,0x0p+0,-0x1.ap+1,0x1p+1\n", "does not implement sinks")])
def test_flashinfer_undeclared_features(tmp_path, features, why):
    from test_bridge_features import _PREFILL, _case
    rc, out = _replay(_case(tmp_path, "p", _PREFILL, features))
    assert rc == 77 and why in out, out[-3000:]
