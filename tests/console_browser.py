"""Helpers of the console's browser tests: Debian's Chromium (Playwright's own browser download
cannot be used here), a record of page problems, a real server's config, and the steps a person
takes (sign in, upload)."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import JWT_SECRET
from ingest_server.auth import hash_secret
from testkit.server_process import write_config
from ingest_helpers import SPEC
from testkit.server_process import ServerProcess, free_port

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


OFFICER = ("district-officer", "officer-secret-0123456789abcdef")
OTHER = ("other-office", "other-office-secret-0123456789")
AUDITOR = ("state-auditor", "auditor-secret-0123456789abcdef")
BAD_CSV = (b"date,school_id,teachers_present,remarks\r\n"
           b"2024-01-01,S1,5,fine\r\n"
           b"2024-01-02,S2,abc,=HYPERLINK(\"http://evil\")\r\n"
           b"2024-01-03,,7,missing school\r\n"
           b"2024-01-04,S4,6,fine\r\n")
SCREENSHOTS = os.environ.get("INGEST_SCREENSHOTS")


def server_config(tmp: Path, dsn: str, **auth) -> Path:
    return write_config(tmp / "config.toml", {
        "server": {"host": "127.0.0.1", "plugins_dir": str(tmp / "plugins"),
                   "state_dir": str(tmp / "state"), "log_level": "INFO"},
        "database": {"dsn": dsn, "startup_wait_s": 0.0},
        "storage": {"backend": "local", "root": str(tmp / "storage")},
        "ingest": {"workers": 1},
        "auth": dict({"jwt_secret": JWT_SECRET, "clients": [
            {"id": OFFICER[0], "secret_sha256": hash_secret(OFFICER[1]),
             "scopes": ["ingest", "read", "spec"]},
            {"id": OTHER[0], "secret_sha256": hash_secret(OTHER[1]), "scopes": ["ingest", "read"]},
            {"id": AUDITOR[0], "secret_sha256": hash_secret(AUDITOR[1]), "scopes": ["read", "admin"]},
        ]}, **auth),
    })


def api(server, path, *, token=None, method="GET", body=None):
    req = urllib.request.Request(server.url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Accept": "application/json",
                                          "Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def token_of(server, who):
    req = urllib.request.Request(server.url + "/api/ingestion/generatejwt", headers={
        "Accept": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"{who[0]}:{who[1]}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["token"]


def shot(page, name, full_page=True):
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)


def sign_in(page, server, who=OFFICER):
    page.goto(server.url + "/")
    page.get_by_label("Client id").fill(who[0])
    page.get_by_label("Client secret").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Upload a file")).to_be_visible()


def upload_csv(page, name, content, *, spec="teacherspresent", program="school-attendance"):
    page.goto(page.url.split("#")[0] + "#/upload")
    page.get_by_label("Spec", exact=True).fill(spec)
    page.get_by_label("Programme", exact=True).fill(program)
    page.set_input_files("#file", files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
    page.get_by_role("button", name="Upload", exact=True).click()


UNLABELLED = """[...document.querySelectorAll('input, select, textarea, button')]
  .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length) &&
                 !e.getAttribute('aria-label') && !(e.textContent || '').trim())
  .map((e) => e.outerHTML)"""


# WCAG 2 contrast of every visible text against its effective background: 4.5:1, or 3:1 for
# large text (24 px, or 18.66 px bold).
LOW_CONTRAST = """(() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((acc, v, i) => acc + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
    if (!text || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || el.closest('[hidden], .sr-only, option, select')) continue;
    const [a, b] = [lum(rgb(st.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`${text.slice(0, 30)}: ${ratio.toFixed(2)} < ${need}`);
  }
  return bad;
})()"""


def assert_labelled(page):
    """Every control has a label (or is a button with text): screen readers can name it; and
    every text has enough contrast to be read."""
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, for one test module."""
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A desktop-sized page whose console errors, uncaught exceptions and failed requests fail
    the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 800}, accept_downloads=True)
    pg = context.new_page()
    pg.problems = PageProblems(pg)
    yield pg
    problems = pg.problems.errors
    context.close()
    assert problems == [], problems


@pytest.fixture(scope="module")
def server(pg_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    proc = ServerProcess(server_config(tmp, pg_dsn), free_port(), tmp / "server.log")
    proc.start()
    proc.storage = tmp / "storage"
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def spec_registered(server):
    api(server, "/api/spec/event", token=token_of(server, OFFICER), method="POST", body=SPEC)
    api(server, "/api/spec/event", token=token_of(server, OFFICER), method="POST",
        body=dict(SPEC, program="attendance"))
