"""The console with files as programme staff have them (issue 25), in a real browser against a
real server: a cp1252 file refused with its encoding filled in, sent again and landed; a
workbook uploaded as it is; the spec page's templates in the spec's order, and the downloaded
example landing through the console."""

from __future__ import annotations

from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

from console_browser import browser, page, sign_in, upload_csv  # noqa: E402,F401 - fixtures
from console_browser import server, spec_registered  # noqa: E402,F401 - fixtures
from files_helpers import FILES  # noqa: E402

expect = playwright_api.expect


def test_cp1252_refusal_fills_in_the_encoding_then_lands(page, server, spec_registered):
    page.problems.expect(400)
    sign_in(page, server)
    upload_csv(page, "ansi.csv", (FILES / "ansi-cp1252.csv").read_bytes())
    expect(page.get_by_role("alert")).to_contain_text("encoding=cp1252")
    expect(page.get_by_label("Encoding")).to_have_value("cp1252")
    expect(page.locator("#progress-text")).not_to_contain_text("checking the last rows")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("1 rejected row")


def test_workbook_and_semicolons_through_the_console(page, server, spec_registered):
    sign_in(page, server)
    page.goto(page.url.split("#")[0] + "#/upload")
    page.get_by_label("Spec", exact=True).fill("teacherspresent")
    page.get_by_label("Programme", exact=True).fill("school-attendance")
    page.set_input_files("#file", files=[{
        "name": "attendance.xlsx", "buffer": (FILES / "attendance.xlsx").read_bytes(),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("2 rejected rows")
    expect(page.locator("#result")).to_contain_text("Attendance")
    page.get_by_label("Delimiter").select_option(";")
    page.set_input_files("#file", files=[{"name": "semicolon.csv", "mimeType": "text/csv",
                                          "buffer": (FILES / "semicolon.csv").read_bytes()}])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("1 rejected row")


def test_spec_page_templates_in_spec_order_land(page, server, spec_registered):
    sign_in(page, server)
    page.goto(page.url.split("#")[0] + "#/specs/event/teacherspresent")
    expect(page.get_by_role("heading", name="Spec: teacherspresent")).to_be_visible()
    rows = page.locator("#columns tbody tr td:first-child")
    expect(rows).to_have_text(["date", "school_id", "teachers_present", "remarks", "score"])
    with page.expect_download() as got:
        page.get_by_role("button", name="XLSX with an example row").click()
    assert got.value.suggested_filename == "teacherspresent-template.xlsx"
    filled = Path(got.value.path()).read_bytes()
    assert filled[:2] == b"PK"
    page.goto(page.url.split("#")[0] + "#/upload")
    page.get_by_label("Spec", exact=True).fill("teacherspresent")
    page.get_by_label("Programme", exact=True).fill("school-attendance")
    page.set_input_files("#file", files=[{"name": "teacherspresent-template.xlsx",
                                          "mimeType": "application/octet-stream",
                                          "buffer": filled}])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("Accepted")
    expect(page.locator("#verdict")).not_to_contain_text("rejected row")
