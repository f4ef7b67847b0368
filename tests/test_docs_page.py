"""The Swagger UI page at ``/api/docs``: security headers (CSP, frame protection, nosniff) on the
page and its files, and the page still renders the API in a real browser (Debian's Chromium via
Playwright) against a real server process, with no console error (a CSP violation is one)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from aiohttp import FormData

from console_browser import PageProblems, chromium_path, server_config
from ingest_helpers import register
from ingest_server.web.openapi.document import build_document
from testkit.server_process import ServerProcess, free_port

DOCS_FILES = ("/api/docs", "/api/docs/init.js", "/api/docs/swagger-ui.css",
              "/api/docs/swagger-ui-bundle.js", "/api/docs/swagger-ui-standalone-preset.js",
              "/api/docs/favicon-32x32.png", "/api/openapi.json")


@pytest.fixture(scope="module")
def server(pg_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    proc = ServerProcess(server_config(tmp, pg_dsn), free_port(), tmp / "server.log")
    proc.start()
    yield proc
    proc.kill()


def _headers(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read()
        return resp.headers


@pytest.mark.parametrize("path", DOCS_FILES)
def test_docs_page_and_files_carry_csp_frame_protection_and_nosniff(server, path):
    headers = _headers(server.url + path)
    assert headers["X-Content-Type-Options"] == "nosniff", path
    assert headers["X-Frame-Options"] == "DENY", path
    csp = headers["Content-Security-Policy"]
    assert csp is not None, path
    parts = {p.strip().split(" ", 1)[0]: p.strip() for p in csp.split(";")}
    assert parts["frame-ancestors"] == "frame-ancestors 'none'"
    assert parts["default-src"] == "default-src 'self'"
    assert parts["script-src"] == "script-src 'self'"  # no inline or third-party script
    assert parts["object-src"] == "object-src 'none'"
    assert "http" not in csp and "*" not in csp


def test_swagger_ui_renders_under_its_csp_in_a_real_browser(server):
    playwright_api = pytest.importorskip("playwright.sync_api")
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context()
            page = context.new_page()
            problems = PageProblems(page)
            page.goto(server.url + "/api/docs")
            # Swagger UI fetched the document and drew one block per operation.
            page.locator(".opblock").first.wait_for(timeout=30_000)
            assert page.locator(".opblock").count() > 20
            expect = playwright_api.expect
            expect(page.locator(".info .title").first).to_contain_text("ingest-server")
            # Open one operation: its parts render (inline styles of the UI are allowed).
            page.locator(".opblock-summary").first.click()
            page.locator(".opblock-body").first.wait_for(timeout=10_000)
            # Framed by another page: the browser refuses to render it, and says why.
            framer = context.new_page()
            with framer.expect_console_message(lambda m: "frame-ancestors" in m.text,
                                               timeout=10_000):
                framer.set_content(f'<iframe id="f" src="{server.url}/api/docs"></iframe>')
            expect(framer.frame_locator("#f").locator("#swagger-ui")).to_have_count(0)
            assert problems.errors == [], problems.errors
        finally:
            browser.close()


ROOT = Path(__file__).resolve().parents[1]


async def test_root_leads_a_browser_to_the_console(client):
    resp = await client.get("/", allow_redirects=False, headers={"Accept": "text/html"})
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "/console/app.js" in await resp.text()


def _form(name: str) -> dict:
    return build_document()["components"]["schemas"][name]


def test_swagger_upload_forms_can_be_executed_as_displayed():
    doc = build_document()
    for path, form in (("/api/ingestion/new_programs", "UploadForm"),
                       ("/api/ingestion/national_programs", "NationalUploadForm")):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{form}"}
        props = _form(form)["properties"]
        # Swagger UI sends the fields in this order: options before the file.
        assert list(props)[-1] == "file"
        # Every text field shows a working value, never Swagger UI's "string" placeholder.
        for name, schema in props.items():
            if name != "file":
                assert "example" in schema, (form, name)
                assert schema["example"] in schema.get("enum", [schema["example"]])
    assert _form("UploadForm")["properties"]["ingestion_type"]["enum"] == \
        ["event", "dimension", "dataset"]
    # The other options are query parameters there: not pre-filled, so not sent unless set.
    params = doc["paths"]["/api/ingestion/new_programs"]["post"]["parameters"]
    assert {p["name"] for p in params if p["in"] == "query"} >= {"max_error_rate", "encoding"}
    assert all("example" not in p and "example" not in p["schema"] for p in params)


async def test_the_form_as_swagger_ui_sends_it_works(client, auth_headers):
    """The form's fields with their examples, in the document's order, file last: a dry run."""
    await register(client, auth_headers, spec=json.loads(
        (ROOT / "samples/specs/programs/school-attendance/teacherspresent.json").read_text()))
    props = _form("UploadForm")["properties"]
    data = FormData()
    for name, schema in props.items():
        if name == "file":
            data.add_field("file", (ROOT / "samples/teacherspresent.csv").read_bytes(),
                           filename="teacherspresent.csv", content_type="text/csv")
        else:
            data.add_field(name, "true" if name == "dry_run" else schema["example"])
    resp = await client.post("/api/ingestion/new_programs", data=data, headers=auth_headers)
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["status"], body["dry_run"], body["valid_rows"], body["invalid_rows"]) == \
        ("uploaded", True, 3, 2)
