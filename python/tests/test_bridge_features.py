"""Windows, softcap, ALiBi and sinks through the Python bridge, numpy only:
numpy_ref (which declares all four) passes feature cases replayed from case
files; each adapter with one classic feature bug (bridge_adapters.py) fails
and the diagnosis names the bug; an adapter that declares no feature gets the
case refused as unsupported, never run. Needs the attncheck binary (skipped
without one)."""

import os

import pytest

from test_bridge import run

REF = "py:attncheck.adapters:numpy_ref"

# A prefill case: GQA, two sequences (Lq < Lk bottom-right, and Lq = Lk), bf16.
_PREFILL = """attncheck-case 1
title features through the bridge
expect ok
op prefill
dtype bf16
batch 2
seqlen_q 9 16
seqlen_k 23 16
heads_q 4
heads_kv 2
head_dim 32
scale default
causal {causal}
mask none
mask_per_head 0
mask_density 0x1.8p-1
paged 0
block_size 0
num_blocks 0
max_blocks_per_seq 0
num_tokens 0
slot_mapping
slot_mapping_i64 0
num_splits 1
{features}dist normal
special none
seed 101
"""

# A decode step on a paged cache: two sequences of 1 and 2 queries.
_DECODE = """attncheck-case 1
title decode features through the bridge
expect ok
op decode
dtype bf16
batch 2
seqlen_q 1 2
seqlen_k 9 20
heads_q 4
heads_kv 2
head_dim 16
scale 0x1p-3
causal BR
mask none
mask_per_head 0
mask_density 0x1.8p-1
paged 1
block_size 4
num_blocks 9
max_blocks_per_seq 6
block_table 0: 8 5 1 -1 -1 -1
block_table 1: 0 7 6 2 3 -1
num_tokens 0
slot_mapping
slot_mapping_i64 0
num_splits 1
{features}dist normal
special none
seed 1
"""

ALL = ("window_left {wl}\nwindow_right {wr}\nsoftcap 0x1.4p+2\n"
       "alibi_slopes 0x1p-1,0x1p-2,0x1p-3,0x1p-4\nsinks -inf,0x0p+0,-0x1.ap+1,0x1p+1\n")


def _case(tmp_path, name, template, features, causal="BR"):
    path = os.path.join(str(tmp_path), name + ".case")
    with open(path, "w") as f:
        f.write(template.format(causal=causal, features=features))
    return path


def _replay(path, adapter):
    return run(["replay", path, "--kernel", adapter])


@pytest.mark.parametrize("causal,wl,wr", [("BR", 5, 0), ("none", 3, 4), ("TL", -1, 2)])
def test_numpy_ref_passes_prefill_features(tmp_path, causal, wl, wr):
    rc, out = _replay(_case(tmp_path, "p", _PREFILL, ALL.format(wl=wl, wr=wr), causal), REF)
    assert rc == 0, out[-2000:]
    assert "result: PASS" in out and "window=%d,%d" % (wl, wr) in out, out[-2000:]


def test_numpy_ref_passes_decode_features(tmp_path):
    rc, out = _replay(_case(tmp_path, "d", _DECODE, ALL.format(wl=6, wr=-1)), REF)
    assert rc == 0, out[-2000:]
    assert "result: PASS" in out, out[-2000:]


# (adapter, causal, window) -> the hypothesis the diagnosis must name. ALiBi's |distance| and the
# top-left window need keys past the diagonal or Lq != Lk: the non-causal case has both.
@pytest.mark.parametrize("adapter,causal,diagnosis", [
    ("WindowTopLeft", "BR", "diagnosis: matches window_top_left"),
    ("WindowTopLeft", "none", "diagnosis: matches window_top_left"),
    ("WindowLeftWide", "BR", "diagnosis: matches window_left+1"),
    ("WindowRightNarrow", "none", "diagnosis: matches window_right-1"),
    ("AlibiSign", "BR", "diagnosis: matches alibi_sign_flipped"),
    ("AlibiAbs", "none", "diagnosis: matches alibi_abs"),
    ("SoftcapIgnored", "BR", "diagnosis: matches softcap_ignored"),
    ("SoftcapAfterMask", "BR", "diagnosis: matches softcap_after_mask"),
    ("SinksIgnored", "BR", "diagnosis: matches sinks_ignored"),
])
def test_feature_bug_diagnosed(tmp_path, adapter, causal, diagnosis):
    wl, wr = (5, 0) if causal == "BR" else (3, 4)
    rc, out = _replay(_case(tmp_path, "p", _PREFILL, ALL.format(wl=wl, wr=wr), causal),
                      "py:bridge_adapters:" + adapter)
    assert rc == 1, out[-2000:]
    assert diagnosis in out, out[-3000:]


def test_alibi_abs_equals_signed_when_causal(tmp_path):
    # flash-attn's -slope*|d| is the contract's signed ALiBi for every key a causal row sees.
    rc, out = _replay(_case(tmp_path, "p", _PREFILL, ALL.format(wl=5, wr=0)), "py:bridge_adapters:AlibiAbs")
    assert rc == 0, out[-2000:]


def test_undeclared_feature_is_unsupported_not_run(tmp_path):
    # An adapter that declares no feature (as every adapter written before them): a case with a
    # window is refused before the worker sees it, named as unsupported.
    rc, out = _replay(_case(tmp_path, "p", _PREFILL, "window_left 5\nwindow_right 0\n"),
                      "py:bridge_adapters:NoFeatures")
    assert rc == 77, out[-2000:]  # replay's exit for "unsupported by the kernel (not passed)"
    assert "result: UNSUP" in out and "does not implement window for prefill" in out, out[-2000:]
    # ... and a case without features still runs and passes
    rc, out = _replay(_case(tmp_path, "q", _PREFILL, ""), "py:bridge_adapters:NoFeatures")
    assert rc == 0, out[-2000:]


def test_partly_declared_features(tmp_path):
    # window and ALiBi declared, softcap and sinks not: the softcap case is the one refused.
    rc, out = _replay(_case(tmp_path, "p", _PREFILL, "window_left 5\nwindow_right 0\n"
                            "alibi_slopes 0x1p-1,0x1p-2,0x1p-3,0x1p-4\n"), "py:bridge_adapters:WindowAlibiOnly")
    assert rc == 0, out[-2000:]
    rc, out = _replay(_case(tmp_path, "q", _PREFILL, "softcap 0x1.4p+2\n"), "py:bridge_adapters:WindowAlibiOnly")
    assert rc == 77 and "does not implement softcap for prefill" in out, out[-2000:]
