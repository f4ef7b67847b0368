"""The console's processing views in a real browser against a real server process and the real
PostgreSQL: the Specs page lists the grammars (dimension row counts and last load, event links),
an upload's page groups its unknown keys by dimension; no console error anywhere."""

from __future__ import annotations

import asyncio

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

from console_browser import (OFFICER, browser, page, server_config, sign_in,  # noqa: E402,F401
                             token_of)
from processing_helpers import reset_processing  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402
from testkit.server_process import ServerProcess, free_port  # noqa: E402

expect = playwright_api.expect


@pytest.fixture(scope="module")
def server(pg_dsn, tmp_path_factory):
    # A database of its own: other modules register specs (a `district` among them) in the
    # shared one, and a grammar must agree with a spec of its name.
    with fresh_database(pg_dsn, "ingest_processing_console") as dsn:
        asyncio.run(reset_processing(dsn))
        tmp = tmp_path_factory.mktemp("processing-console")
        config = server_config(tmp, dsn)
        config.write_text(config.read_text() + "\n[processing]\nenabled = true\n")
        proc = ServerProcess(config, free_port(), tmp / "server.log")
        proc.start()
        try:
            yield proc
        finally:
            proc.kill()


# The event grammar of both programmes' "visits": a date, a district key, a metric.
VISITS_GRAMMAR = (b",district,\n,district_id,\ndate,string,integer\n"
                  b"date,district_id,visits\ntimeDimension,dimension,metric\n")


@pytest.fixture(scope="module")
def upload_id(server):
    """District loaded (2 rows), an event file with 3 rows of unknown districts."""
    h = {"Authorization": f"Bearer {token_of(server, OFFICER)}"}
    with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
        r = c.put("/api/processing/grammars/dimensions/district",
                  content=b"Index,\nstring,string\ndistrict_id,district_name\n",
                  headers={"Content-Type": "text/csv"})
        assert r.status_code in (200, 201), r.text
        r = c.put("/api/processing/grammars/events/school-attendance/visits",
                  content=VISITS_GRAMMAR,
                  headers={"Content-Type": "text/csv"})
        assert r.status_code in (200, 201), r.text
        r = c.post("/api/ingestion/new_programs", data={
            "ingestion_type": "dimension", "ingestion_name": "district"}, files={
            "file": ("district.csv", b"district_id,district_name\nD1,One\nD2,Two\n", "text/csv")})
        assert r.json()["processing"]["rows"] == 2, r.text
        r = c.post("/api/ingestion/new_programs", data={
            "ingestion_type": "event", "ingestion_name": "visits",
            "program_name": "school-attendance"}, files={"file": ("visits.csv", (
                b"date,district_id,visits\n01/05/23,D1,1\n01/05/23,D7,2\n01/05/23,D7,3\n"
                b"01/05/23,D8,4\n"), "text/csv")})
        body = r.json()
        assert body["invalid_rows"] == 3, body
        return body["upload_id"]


@pytest.fixture(scope="module")
def processed_id(server, upload_id):
    """A registered programme ``pgi`` with the same event: its upload is in its 4 tables
    (``school-attendance`` stays unregistered: its upload stays pending, retried)."""
    h = {"Authorization": f"Bearer {token_of(server, OFFICER)}"}
    with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
        r = c.put("/api/processing/programs/pgi", json={"namespace": "pgi", "whitelisted": []})
        assert r.status_code in (200, 201), r.text
        r = c.put("/api/processing/grammars/events/pgi/visits",
                  content=VISITS_GRAMMAR,
                  headers={"Content-Type": "text/csv"})
        assert r.status_code in (200, 201), r.text
        r = c.post("/api/ingestion/new_programs", data={
            "ingestion_type": "event", "ingestion_name": "visits", "program_name": "pgi"},
            files={"file": ("pgi.csv", b"date,district_id,visits\n01/05/23,D1,1\n"
                                       b"01/05/23,D2,2\n", "text/csv")})
        body = r.json()
        assert body["processing"]["status"] == "done", body
        return body["upload_id"]






def cells(page, selector):
    return page.locator(selector + " tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def test_specs_page_lists_grammars(server, upload_id, page):
    sign_in(page, server)
    page.goto(server.url + "/#/specs")
    expect(page.get_by_role("heading", name="cQube grammars")).to_be_visible()
    dims = cells(page, "#dimensions-table")
    assert len(dims) == 1 and dims[0][:3] == ["district", "district_id", "2"]
    assert dims[0][3].endswith("(2 rows)")
    assert cells(page, "#events-table") == [["school-attendance", "visits", "visits",
                                             "district_id → district"]]


def test_upload_page_groups_unknown_keys(server, upload_id, page):
    sign_in(page, server)
    page.goto(server.url + f"/#/uploads/{upload_id}")
    expect(page.get_by_role("heading", name="Unknown keys by dimension")).to_be_visible()
    assert cells(page, "#unknown-keys-table") == [["district", "district_id", "3", "2",
                                                   "D7, D8"]]


def datasets_state(page, server, upload_id):
    sign_in(page, server)
    page.goto(server.url + f"/#/uploads/{upload_id}")
    return page.locator("#datasets-state")


def test_upload_page_says_it_is_in_the_dashboard_tables(server, processed_id, page):
    state = datasets_state(page, server, processed_id)
    expect(state).to_contain_text("In the dashboard tables")
    expect(state).to_contain_text("8 groups in 4 tables, added 20")
    expect(page.locator("#program-processed")).to_contain_text(
        "Programme pgi: tables last updated 20")


def test_upload_page_says_why_it_is_not(server, upload_id, page):
    state = datasets_state(page, server, upload_id)
    expect(state).to_contain_text("Not in the dashboard tables yet: processing is pending")
    expect(state).to_contain_text("program_not_registered")
    expect(page.locator("#program-processed")).to_have_text(
        "Programme school-attendance is not registered for processing.")
