"""The Python bridge end to end (`attncheck ... --kernel py:MODULE:ADAPTER`),
numpy only: numpy_ref passes every family's sweep, the laws and a fuzz walk;
each deliberately wrong adapter (tests/bridge_adapters.py) gets the outcome it
must: a FAIL with the right diagnosis, a named error with the worker's last
words, unsupported cases counted apart and never a success. Needs the
attncheck binary ($ATTNCHECK, which ctest sets; skipped without one)."""

import glob
import os
import re
import signal
import subprocess
import tempfile
import sys
import time

import pytest

from attncheck import __main__ as cli

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
REF = "py:attncheck.adapters:numpy_ref"


def _binary():
    path = cli.find_binary()
    if path is None:
        pytest.skip("no attncheck binary")
    return path


def _env(**extra):
    env = dict(os.environ)
    env["ATTNCHECK_PYTHON"] = sys.executable  # the interpreter running the tests has numpy
    env["PYTHONPATH"] = os.pathsep.join([HERE, PYDIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def run(args, timeout=600, **extra):
    p = subprocess.run([_binary()] + args, capture_output=True, text=True, timeout=timeout, env=_env(**extra))
    return p.returncode, p.stdout + p.stderr


def _workers(tag):
    """Processes still running a worker for this adapter spec."""
    out = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if tag in l and "attncheck.bridge" in l]


def _shm_files():
    return set(glob.glob("/dev/shm/attncheck-bridge-*")) | set(glob.glob("/tmp/attncheck-bridge-*"))


# ---- numpy_ref passes ----------------------------------------------------------------------

@pytest.mark.parametrize("family", ["prefill", "decode", "combine", "store"])
def test_numpy_ref_sweep(family):
    before = _shm_files()
    rc, out = run(["sweep", family, "--quick", "--kernel", REF])
    assert rc == 0, out
    assert re.search(r"^\d+ passed, 0 failed(, \d+ unsupported)?$", out, re.M), out  # feature rows: numpy_ref has none
    assert "py:numpy_ref" in out
    assert _shm_files() <= before  # the shared file was unlinked at once
    # (leftover workers are looked for with adapters only this file uses: ctest runs numpy_ref alongside)


def test_numpy_ref_properties():
    prop = os.path.join(os.path.dirname(_binary()), os.pardir, "properties", "property_gpu")
    if not os.path.exists(prop):
        pytest.skip("no property_gpu beside the binary")
    p = subprocess.run([prop, "--kernel", REF, "--seed", "7"], capture_output=True, text=True, timeout=900,
                       env=_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"PASS: 0 of \d+ properties failed", p.stdout), p.stdout


def test_numpy_ref_walk_and_throughput(tmp_path, capsys):
    seeds = os.path.join(PYDIR, os.pardir, "corpus", "layout")
    rc, out = run(["fuzz", "layout", "--walk", "--jobs", "1", "--seconds", "6", "--seed", "11", "--kernel", REF,
                   "--seeds", seeds, "--out", str(tmp_path)])
    assert rc == 0, out
    m = re.search(r"executions +(\d+) \(([\d.]+)/s\): (\d+) passed", out)
    assert m and int(m.group(3)) > 0, out
    with capsys.disabled():  # the bridge's throughput, in the test log
        print("\nbridge throughput: layout walk through numpy_ref, 1 worker: %s cases/s (%s executions, %s passed)"
              % (m.group(2), m.group(1), m.group(3)))


# ---- wrong semantics fail, and the diagnosis names them ------------------------------------------

@pytest.mark.parametrize("adapter,family,diagnosis", [
    ("ScaleOne", "prefill", "diagnosis: matches scale=1.0"),
    ("TopLeft", "prefill", "diagnosis: matches causal=TOP_LEFT"),
    ("TopLeft", "decode", "diagnosis: matches causal=TOP_LEFT"),
    ("GqaMod", "prefill", "diagnosis: matches kv_head=h%Hkv"),
    ("LseBase2Declared", "prefill", "diagnosis: matches lse_base=2"),
])
def test_wrong_semantics_diagnosed(adapter, family, diagnosis):
    rc, out = run(["sweep", family, "--quick", "--kernel", "py:bridge_adapters:" + adapter])
    assert rc == 1, out
    fails = len(re.findall(r"^FAIL ", out, re.M))
    assert fails > 0 and out.count(diagnosis) > 0, out[-3000:]


def test_poisoned_slots_blamed_only_when_they_are_the_cause():
    # NaN through excluded slots (a zero weight times NaN): the same case without
    # the poison passes, and the report says so.
    rc, out = run(["sweep", "decode", "--quick", "--kernel", "py:bridge_adapters:PoolTileLeak"])
    assert rc == 1, out[-2000:]
    assert "poisoned slots: matches unused_slots_read" in out, out[-3000:]
    assert "not the cause" not in out, out[-3000:]
    # NaN for another reason (scale 0) in cases that also poison their slots: not blamed.
    rc, out = run(["sweep", "decode", "--quick", "--kernel", "py:bridge_adapters:ZeroScaleNan"])
    assert rc == 1, out[-2000:]
    assert "poisoned slots: not the cause" in out, out[-3000:]
    assert "matches unused_slots_read" not in out, out[-3000:]


def test_one_bug_is_few_kinds_of_finding():
    # A walk saves one file per kind of finding: the kind is what failed and what it
    # matches, not where or by how much, so one bug in prefill and decode is a few
    # kinds (one per family and failure class), not one per message.
    rc, out = run(["fuzz", "layout", "--walk", "--jobs", "1", "--seconds", "15", "--seed", "7",
                   "--kernel", "py:bridge_adapters:PoolTileLeak", "--out", tempfile.mkdtemp()], timeout=300)
    m = re.search(r"findings +(\d+), of (\d+) kinds", out)
    assert m, out[-2000:]
    assert int(m.group(1)) >= 20 and 1 <= int(m.group(2)) <= 3, m.group(0)


def test_nan_in_a_nonempty_row_fails():
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", "py:bridge_adapters:NanRow"])
    assert rc == 1, out
    assert re.search(r"FAIL r=inf .*nan=[1-9]", out), out[-2000:]


def test_declared_base2_lse_is_converted():
    for fam in ("prefill", "combine"):
        rc, out = run(["sweep", fam, "--quick", "--kernel", "py:bridge_adapters:LseBase2Honest"])
        assert rc == 0, out


def test_no_lse_is_not_judged_and_said():
    rc, out = run(["sweep", "decode", "--quick", "--verbose", "--kernel", "py:bridge_adapters:NoLse"])
    assert rc == 0, out
    assert "lse=not-returned" in out and "lse_r=" not in out.split("cases on the")[1].split("group")[0]


def test_empty_row_convention_applied_only_as_declared():
    # NaN in the rows with no allowed key: accepted when declared, a failure when not.
    rc, out = run(["sweep", "prefill", "--kernel", "py:bridge_adapters:NanEmpty", "--filter", "mask=bool"],
                  BRIDGE_TEST_EMPTY_ROW="nan")
    assert rc == 0, out
    rc, out = run(["sweep", "prefill", "--kernel", "py:bridge_adapters:NanEmpty", "--filter", "mask=bool"],
                  BRIDGE_TEST_EMPTY_ROW="zero_neginf")
    assert rc == 1, out
    assert "empty rows:" in out and "O = NaN" in out, out[-2000:]


# ---- the worker's failures are named errors, and it comes back --------------------------------------

def test_crash_mid_case_is_named_and_restarted():
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", "py:bridge_adapters:Crash"])
    assert rc == 1, out
    assert "the worker died (exit status 3) at a case; stderr: crash: going down on purpose" in out, out[-2000:]
    m = re.search(r"^(\d+) passed, (\d+) failed(?:, \d+ unsupported)?$", out, re.M)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, out  # the next cases ran on a new worker
    assert not _workers("bridge_adapters:Crash")


def test_hang_is_killed_after_the_timeout(tmp_path):
    marker = str(tmp_path / "hung-once")
    t0 = time.time()
    rc, out = run(["sweep", "prefill", "--quick", "--filter", "D=64 ", "--kernel", "py:bridge_adapters:Hang"],
                  timeout=120, ATTNCHECK_BRIDGE_TIMEOUT="2", BRIDGE_TEST_MARKER=marker)
    assert rc == 1, out
    assert "answered nothing in 2 s ($ATTNCHECK_BRIDGE_TIMEOUT): killed" in out, out[-2000:]
    assert "hang: sleeping in" in out
    m = re.search(r"^(\d+) passed, 1 failed(?:, \d+ unsupported)?$", out, re.M)
    assert m and int(m.group(1)) > 0, out
    assert time.time() - t0 < 60
    assert not _workers("bridge_adapters:Hang")


def test_protocol_breach_is_named():
    rc, out = run(["sweep", "prefill", "--quick", "--filter", "D=64 ", "--kernel", "py:bridge_adapters:Garbage"])
    assert rc == 1, out
    assert "broke the protocol" in out and "this is not json" in out, out[-2000:]


def test_adapter_exception_is_named():
    rc, out = run(["sweep", "prefill", "--quick", "--filter", "D=64 ", "--kernel", "py:bridge_adapters:Raises"])
    assert rc == 1, out
    assert "AC_ERR_IO" in out or "the adapter raised ZeroDivisionError: division by zero" in out, out[-2000:]
    assert "the adapter raised ZeroDivisionError: division by zero" in out


def test_everything_unsupported_is_no_success(tmp_path):
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", "py:bridge_adapters:NothingSupported"])
    assert rc == 77, out
    assert re.search(r"^0 passed, 0 failed, \d+ unsupported$", out, re.M), out
    assert "UNSUP prefill" in out and "this adapter expresses no case" in out
    rc, out = run(["fuzz", "layout", "--walk", "--jobs", "1", "--seconds", "3", "--seed", "2", "--kernel",
                   "py:bridge_adapters:NothingSupported", "--out", str(tmp_path)])
    assert rc == 77, out
    assert "unsupported by the kernel (not passed)" in out
    prop = os.path.join(os.path.dirname(_binary()), os.pardir, "properties", "property_gpu")
    if os.path.exists(prop):
        p = subprocess.run([prop, "--kernel", "py:bridge_adapters:NothingSupported", "--prop", "gqa", "--max", "4"],
                           capture_output=True, text=True, timeout=300, env=_env())
        assert p.returncode == 77, p.stdout + p.stderr


def test_overflow_law_without_lse_names_the_row():
    # SDPA returns no LSE; the overflow law's report once read the LSE anyway
    # and property_gpu died (rc 139 on the H200 for sdpa_flash and sdpa_cudnn).
    prop = os.path.join(os.path.dirname(_binary()), os.pardir, "properties", "property_gpu")
    if not os.path.exists(prop):
        pytest.skip("no property_gpu beside the binary")
    p = subprocess.run([prop, "--kernel", "py:bridge_adapters:NoLseOverflowNan", "--prop", "overflow", "--max", "4",
                        "--seed", "3"], capture_output=True, text=True, timeout=300, env=_env())
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "overflow/no-inf-or-nan" in out and "LSE nan" in out, out


def test_bad_adapters_refused_at_load():
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", "py:bridge_adapters:BadImport"])
    assert rc == 2 and "cannot load bridge_adapters:BadImport: ValueError: families: teleport is not a family" in out, out
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", "py:no_such_module_here:x"])
    assert rc == 2 and "No module named 'no_such_module_here'" in out, out
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", "py:missing-colon"])
    assert rc == 2 and "expected py:MODULE:ADAPTER" in out, out
    rc, out = run(["sweep", "prefill", "--quick", "--kernel", REF], ATTNCHECK_PYTHON="/nonexistent/python3")
    assert rc == 2 and "cannot run /nonexistent/python3" in out, out


def test_stop_during_a_walk_leaves_nothing(tmp_path):
    """SIGINT reaches the walk (ac_stop): it stops, ends its workers' Python
    workers and leaves no process and no shared file behind."""
    before = _shm_files()
    p = subprocess.Popen([_binary(), "fuzz", "layout", "--walk", "--jobs", "2", "--seconds", "120", "--seed", "4",
                          "--kernel", "py:bridge_adapters:Slow", "--out", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert "walk: stopped by a signal" in out, out
    time.sleep(0.5)
    assert not _workers("bridge_adapters:Slow"), _workers("bridge_adapters:Slow")
    assert _shm_files() <= before
