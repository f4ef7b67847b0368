"""The markers `make test-fast` leaves out name real tests: a renamed module or test would
otherwise quietly move a slow or browser test into the fast run."""

import ast
from pathlib import Path

from conftest import MARKERS

TESTS = Path(__file__).resolve().parent


def test_every_marked_module_and_test_exists():
    for key, marker in MARKERS.items():
        assert marker in ("browser", "replicas", "slow"), key
        module, _, test = key.partition("::")
        path = TESTS / module
        assert path.is_file(), key
        if test:
            names = {n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            assert test in names, key


def test_every_module_that_drives_a_browser_is_marked_browser():
    """A module that opens Chromium through Playwright (``playwright.sync_api``) must not run in
    make test-fast."""
    for path in sorted(TESTS.glob("test_*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name != "test_markers.py" and "playwright.sync_api" in source:
            marked = MARKERS.get(path.name) == "browser" or any(
                key.startswith(path.name + "::") and marker == "browser"
                for key, marker in MARKERS.items())
            assert marked, f"{path.name} uses Playwright but is not marked browser"
