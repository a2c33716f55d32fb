"""python -m attncheck: verify hands the folder to the attncheck binary;
show prints a dump."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import attncheck
from attncheck import __main__ as cli

PYTHON_DIR = str(Path(__file__).resolve().parents[1])


def _fake_binary(tmp_path, status):
    log = tmp_path / "args.txt"
    script = tmp_path / "attncheck"
    script.write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\nexit %d\n" % (log, status))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def _run(args, env_extra, cwd):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, **env_extra)
    return subprocess.run([sys.executable, "-m", "attncheck"] + args, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_verify_runs_the_binary_from_env(tmp_path):
    script, log = _fake_binary(tmp_path, 3)
    res = _run(["verify", str(tmp_path / "dumps"), "--tsv", "x.tsv"], {"ATTNCHECK": str(script)}, tmp_path)
    assert res.returncode == 3, res.stderr
    assert log.read_text().split("\n")[:4] == ["verify", str(tmp_path / "dumps"), "--tsv", "x.tsv"]


def test_verify_finds_the_binary_on_path(tmp_path, monkeypatch):
    script, log = _fake_binary(tmp_path, 0)
    monkeypatch.delenv("ATTNCHECK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert cli.find_binary() == str(script)
    assert cli.main(["verify", "d"]) == 0
    assert log.read_text().split("\n")[:2] == ["verify", "d"]


def test_verify_finds_a_repository_build(tmp_path, monkeypatch):
    script, _ = _fake_binary(tmp_path, 0)
    build = tmp_path / "repo" / "build" / "tools"
    build.mkdir(parents=True)
    os.replace(script, build / "attncheck")
    (tmp_path / "repo" / "sub").mkdir()
    monkeypatch.delenv("ATTNCHECK", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.chdir(tmp_path / "repo" / "sub")
    found = cli.find_binary()
    # The package's own repository build (if built) comes first; else the one above cwd.
    own = Path(cli.__file__).resolve().parents[2] / "build" / "tools" / "attncheck"
    assert found in (str(own), str(build / "attncheck"))


def test_verify_without_a_binary(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ATTNCHECK", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(cli, "_BUILD_BINARY", Path("no") / "such" / "binary")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["verify", "d"]) == 2
    assert "no attncheck binary found" in capsys.readouterr().err
    assert cli.main(["verify"]) == 2


def test_show(tmp_path):
    attncheck.dump(tmp_path / "a.safetensors", op="combine", o_part=np.zeros((2, 3, 8), np.float32),
                   lse_part=np.zeros((2, 3), np.float32), out=np.zeros((2, 8), np.float16),
                   lse_base="2")
    res = _run(["show", str(tmp_path / "a.safetensors")], {}, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "op=combine" in res.stdout and "lse_base=2" in res.stdout
    assert "o_part" in res.stdout and "F32" in res.stdout and "[2, 3, 8]" in res.stdout
    (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
    res = _run(["show", str(tmp_path / "bad.safetensors")], {}, tmp_path)
    assert res.returncode == 1 and "does not fit the file" in res.stderr


def test_import_does_not_import_torch():
    code = "import sys, attncheck; print('torch' in sys.modules, 'safetensors' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=PYTHON_DIR),
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["False", "False"], res.stderr
