"""The Makefile's two installs (``make serve``: the runtime only; ``make test``: the test extra)
and its targets run twice. Runs make: marked slow."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def _make_n(tmp_path: Path, target: str, stamps: tuple[str, ...] = ()) -> str:
    """``make -n TARGET`` in a copy of the files the Makefile depends on."""
    (tmp_path / "postman").mkdir(exist_ok=True)
    for name in ("Makefile", "pyproject.toml", "constraints.txt", "postman/package.json",
                 "postman/package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    for stamp in ("postman/node_modules/.bin/newman",) + stamps:
        path = tmp_path / stamp
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        time.sleep(0.01)  # each stamp newer than the last, like real runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_serve_installs_the_runtime_only_and_make_test_adds_the_test_extra(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not found")
    serve = _make_n(tmp_path, "serve")
    installs = [ln for ln in serve.splitlines() if "pip install" in ln and "-e" in ln]
    assert installs and all("[test]" not in ln and "-c constraints.txt" in ln for ln in installs)
    assert "source .venv/bin/activate" in serve  # how to get `ingest` on the PATH
    test = _make_n(tmp_path, "test")
    assert "-e '.[test]'" in test and "pytest" in test


def test_make_targets_are_idempotent(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not found")
    stamps = (".venv/.installed", ".venv/.installed-test")
    serve = _make_n(tmp_path, "serve", stamps)
    assert "pip install" not in serve and "ingest-server --config config.toml" in serve
    test = _make_n(tmp_path, "test", stamps)
    assert "pip install" not in test and "pytest" in test
    # A serve-only venv: `make test` adds the test extra once, without redoing the runtime.
    test = _make_n(tmp_path, "test", stamps[:1])
    assert "-e '.[test]'" in test and " -e .\n" not in test + "\n"
