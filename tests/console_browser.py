"""Fixtures' helpers for the console's browser tests: a real server process and Debian's Chromium
driven by Playwright (its own browser download cannot be used here)."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else None


class PageProblems:
    """Console errors, uncaught exceptions and failed requests of a page, for an assertion that
    there were none (a CSP violation is reported as a console error too)."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" and not self._expected(m.text) else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.expected_statuses: set[int] = set()

    def _expected(self, text: str) -> bool:
        # The browser logs every 4xx answer of a fetch as a console error: those the test
        # provokes on purpose (a wrong secret, a refused spec) are declared with expect().
        return any(f"status of {s}" in text for s in self.expected_statuses)

    def expect(self, *statuses: int) -> None:
        self.expected_statuses.update(statuses)
