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


def _sweep(adapter, family):
    path = cli.find_binary()
    if path is None:
        pytest.skip("no attncheck binary")
    env = dict(os.environ, ATTNCHECK_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([path, "sweep", family, "--kernel", "py:flashinfer_cpu:" + adapter],
                         capture_output=True, text=True, timeout=1200, env=env)
    return res.returncode, res.stdout + res.stderr


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
