"""The console's pure JavaScript functions (CSV parsing, the error-file reading, verdicts, byte and
time formatting, program types from /api/plugins, error answers in words), unit-tested with
``node --test``: ``tests/js/*.test.mjs``. The browser tests (test_console.py) drive the pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node not found (Debian's nodejs package)")
def test_console_functions_pass_node_test():
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert files
    # The console's files are ES modules without a package.json saying so: let node detect it.
    done = subprocess.run([NODE, "--experimental-detect-module", "--no-warnings", "--test", *files],
                          cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = int(re.search(r"^# pass (\d+)$", done.stdout, flags=re.M).group(1))
    assert passed >= 9 and re.search(r"^# fail 0$", done.stdout, flags=re.M), done.stdout
