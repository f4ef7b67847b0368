"""The console tried as a new user would (issue 25, item 6 and the console part of item 5), in a
real browser against a real server: empty states on a fresh server; a spec created from a sample
file (drafted, edited, registered, listed); a duplicate upload shown as one; download names and
dates; the phone width measured element by element (cards, the header, the fact grid)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

from console_browser import (BAD_CSV, OFFICER, PageProblems, api,  # noqa: E402
                             assert_labelled, browser, page,  # noqa: F401 - fixtures
                             server_config, shot, sign_in, token_of, upload_csv)
from console_browser import server, spec_registered  # noqa: E402,F401 - fixtures
from files_helpers import FILES  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402
from testkit.server_process import ServerProcess, free_port  # noqa: E402

expect = playwright_api.expect

DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")
SAMPLE = (b"day,school_id,pupils,shift\r\n"
          b"2024-03-01,S1,31,morning\r\n2024-03-01,S2,28,evening\r\n"
          b"2024-03-02,S1,30,morning\r\n2024-03-02,S2,,evening\r\n")


@pytest.fixture(scope="module")
def fresh_server(pg_dsn, tmp_path_factory):
    """A server on a database of its own: no spec, no upload yet."""
    tmp = tmp_path_factory.mktemp("console-fresh")
    with fresh_database(pg_dsn, "ingest_console_fresh") as dsn:
        proc = ServerProcess(server_config(tmp, dsn), free_port(), tmp / "server.log")
        proc.start()
        proc.storage = tmp / "storage"
        yield proc
        proc.kill()


def test_empty_states_then_a_spec_from_a_sample_file(fresh_server, page):  # the database first:
    # it is made with asyncio.run, impossible once Playwright runs its loop
    page.problems.expect(400)
    sign_in(page, fresh_server)
    expect(page.locator("#upload-no-specs")).to_contain_text(
        "No specs yet — register one or create one from a sample")
    page.get_by_role("link", name="History").click()
    expect(page.locator("#history-empty")).to_contain_text("No uploads yet")
    expect(page.locator("#history")).to_have_count(0)
    page.get_by_role("link", name="Specs").click()
    empty = page.locator("#specs-empty")
    expect(empty).to_have_text("No specs yet — register one or create one from a sample.")
    expect(page.locator("#specs-table")).to_be_hidden()
    empty.get_by_role("link", name="create one from a sample").click()
    expect(page.get_by_label("Sample file")).to_be_focused()
    assert_labelled(page)

    # a sample in another encoding: refused with the one to use, filled in
    page.set_input_files("#sample-file", files=[{
        "name": "ansi.csv", "mimeType": "text/csv",
        "buffer": (FILES / "ansi-cp1252.csv").read_bytes()}])
    page.get_by_role("button", name="Draft a spec").click()
    expect(page.locator("#sample-result").get_by_role("alert")).to_contain_text("encoding=cp1252")
    expect(page.get_by_label("Encoding (text files)")).to_have_value("cp1252")
    page.get_by_role("button", name="Draft a spec").click()
    expect(page.locator("#sample-result")).to_contain_text("Draft of spec ansi ready")
    assert "remarks" in json.loads(page.get_by_label("Spec JSON").input_value())["input"]["properties"]
    page.get_by_label("Encoding (text files)").fill("")

    # pick a file → the server drafts → the draft is in the text box, with its evidence
    page.set_input_files("#sample-file", files=[{"name": "pupils-march.csv",
                                                 "mimeType": "text/csv", "buffer": SAMPLE}])
    page.get_by_role("button", name="Draft a spec").click()
    expect(page.locator("#sample-result")).to_contain_text("Draft of spec pupils-march ready")
    expect(page.locator("#sample-result")).to_contain_text("Read from 4 rows")
    evidence = page.locator("#evidence-table tbody tr")
    expect(evidence).to_have_count(4)
    expect(evidence.filter(has_text="pupils")).to_contain_text("1 cell")  # one blank
    assert_labelled(page)
    draft = json.loads(page.get_by_label("Spec JSON").input_value())
    assert list(draft["input"]["properties"]) == ["day", "school_id", "pupils", "shift"]
    assert draft["input"]["properties"]["shift"]["enum"] == ["evening", "morning"]
    assert "pupils" not in draft["input"]["required"]

    # a bad edit is refused and marked; editing clears the mark
    broken = json.loads(json.dumps(draft))
    broken["input"]["properties"]["pupils"]["bogus_rule"] = 1
    page.get_by_label("Spec JSON").fill(json.dumps(broken, indent=2))
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#reg-result").get_by_role("alert")).to_contain_text("bogus_rule")
    expect(page.get_by_label("Spec JSON")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reg-fields li.bad")).to_contain_text("pupils")
    page.get_by_label("Spec JSON").press("End")
    page.get_by_label("Spec JSON").press_sequentially(" ")
    expect(page.get_by_label("Spec JSON")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reg-fields")).to_have_count(0)
    expect(page.locator("#reg-result").get_by_role("alert")).to_have_count(0)

    # edit the draft (rename the programme, drop a column) → register → the list shows it
    draft["program"] = "pupils"
    del draft["input"]["properties"]["shift"]
    draft["input"]["required"].remove("shift")
    page.get_by_label("Spec JSON").fill(json.dumps(draft, indent=2))
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#reg-result")).to_contain_text("Spec registered")
    shot(page, "spec-from-sample")
    expect(page.get_by_label("Spec JSON")).not_to_have_attribute("aria-invalid", "true")
    rows = page.locator("#specs-table tbody tr")
    expect(rows).to_have_count(1)  # no reload: the list was asked for again
    expect(rows.first).to_contain_text("pupils")
    expect(page.locator("#specs-empty")).to_be_hidden()
    registered = api(fresh_server, "/api/specs/event/pupils",
                     token=token_of(fresh_server, OFFICER))["latest"]
    assert registered["columns"] == ["day", "school_id", "pupils"]
    assert DATE.match(rows.first.locator("td").nth(3).inner_text())

    # the templates: on the spec page and on the upload form once the spec is named
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Spec: pupils")).to_be_visible()
    with page.expect_download() as got:
        page.get_by_role("button", name="Empty CSV header").click()
    assert got.value.suggested_filename == "pupils-template.csv"
    assert Path(got.value.path()).read_bytes().splitlines()[0] == b"day,school_id,pupils"
    page.get_by_role("link", name="Upload").click()
    expect(page.locator("#upload-no-specs")).to_have_count(0)
    page.get_by_label("Spec", exact=True).fill("pupils")
    with page.expect_download() as got:
        page.locator("#upload-templates").get_by_role("button", name="Empty Excel workbook").click()
    assert got.value.suggested_filename == "pupils-template.xlsx"
    assert Path(got.value.path()).read_bytes()[:2] == b"PK"


def test_a_duplicate_is_shown_as_one_linking_to_the_upload_holding_the_data(page, server,
                                                                          spec_registered):
    sign_in(page, server)
    data = BAD_CSV.replace(b"S4", b"S44")
    upload_csv(page, "twice.csv", data)
    expect(page.locator("#verdict")).to_contain_text("Accepted with 2 rejected rows")
    page.get_by_role("link", name="See all details, download files").click()
    expect(page.get_by_role("heading", name="Upload: twice.csv")).to_be_visible()
    first_id = page.url.rsplit("/", 1)[1]

    upload_csv(page, "twice.csv", data)
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("Duplicate: this exact file was uploaded before")
    expect(verdict).not_to_contain_text("Accepted")
    expect(verdict.get_by_role("link", name="Open the upload that holds the data")) \
        .to_have_attribute("href", f"#/uploads/{first_id}")
    page.get_by_role("link", name="See all details, download files").click()
    expect(page.get_by_role("heading", name="Upload: twice.csv")).to_be_visible()
    second_id = page.url.rsplit("/", 1)[1]
    assert second_id != first_id
    expect(page.locator("#verdict")).to_contain_text("Duplicate")
    expect(page.get_by_role("heading", name="Files written")).to_have_count(0)
    expect(page.locator("#objects")).to_contain_text("Nothing new was written")
    expect(page.locator("#facts")).to_contain_text(f"Duplicate of{first_id}")
    shot(page, "upload-duplicate")
    assert_labelled(page)

    page.get_by_role("link", name="History").click()
    row = page.locator("#history tbody tr").first
    expect(row).to_contain_text("twice.csv")
    expect(row.locator(".status")).to_have_text("duplicate")
    assert_labelled(page)
    row.get_by_role("link", name="the earlier upload").click()
    expect(page).to_have_url(re.compile(f"#/uploads/{first_id}$"))
    expect(page.get_by_role("heading", name="Files written")).to_be_visible()


def test_downloads_carry_the_file_name_and_dates_have_one_format(page, server, spec_registered):
    sign_in(page, server)
    upload_csv(page, "district-north march.csv", BAD_CSV.replace(b"S4", b"S45"))
    expect(page.locator("#verdict")).to_contain_text("Accepted with 2 rejected rows")
    page.get_by_role("link", name="See all details, download files").click()
    expect(page.get_by_role("heading", name="Upload: district-north march.csv")).to_be_visible()
    for button, name in (("#dl-errors", "district-north march.errors.csv"),
                         ("#dl-errors-safe", "district-north march.errors.formula-safe.csv"),
                         ("#dl-valid", "district-north march.valid.csv")):
        with page.expect_download() as got:
            page.locator(button).click()
        assert got.value.suggested_filename == name
    facts = dict(zip(page.locator("#facts dt").all_inner_texts(),
                     page.locator("#facts dd").all_inner_texts()))
    assert DATE.match(facts["Started"]), facts
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d \(", facts["Finished"]), facts
    assert page.locator("#facts dt", has_text="Size").count() == 1
    assert page.locator(".counts dt", has_text="Size").count() == 0  # size shown once
    expect(page.locator("#rejected h2")).to_have_text("2 rejected rows")
    page.get_by_role("link", name="History").click()
    expect(page.locator("#history tbody tr").first).to_contain_text("district-north march.csv")
    started = page.locator("#history tbody tr td:first-child").all_inner_texts()
    assert started and all(DATE.match(t) for t in started), started
    day = started[0][:10]
    expect(page.get_by_label("From")).to_have_attribute("placeholder", "yyyy-mm-dd")
    page.get_by_label("From").fill(day)
    page.get_by_label("To").fill(day)
    page.get_by_label("File name contains").fill("district-north")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#history tbody tr")).to_have_count(1)
    expect(page.get_by_label("From")).to_have_value(day)
    page.get_by_role("link", name="Specs").click()
    expect(page.locator("#specs-table tbody tr").first).to_be_visible()
    registered = page.locator("#specs-table tbody tr td:nth-child(4)").all_inner_texts()
    assert registered and all(DATE.match(t) for t in registered), registered


# Boxes measured in the page: every cell of the tables inside the viewport, no table scrolling
# sideways, and the words of the fact grid each on one line (broken only at spaces or hyphens).
OUTSIDE = """(sel) => [...document.querySelectorAll(sel)].filter((e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && (r.left < -0.5 || r.right > innerWidth + 0.5);
}).map((e) => e.textContent.slice(0, 40))"""
SCROLLING = """() => [...document.querySelectorAll('.table-wrap')]
  .filter((w) => w.scrollWidth > w.clientWidth + 1).map((w) => w.getAttribute('aria-label'))"""
BROKEN_WORDS = """() => {
  const bad = [];
  for (const dd of document.querySelectorAll('#facts dd')) {
    const walk = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      for (const m of n.textContent.matchAll(/[^\\s-]+/g)) {
        const r = document.createRange();
        r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
        const lines = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
        if (lines.size > 1) bad.push(m[0]);
      }
    }
  }
  return bad;
}"""


def measure_fits(page, tables):
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(SCROLLING) == []
    for selector in tables:
        assert page.locator(f"{selector} tbody td").count() > 0, selector
        assert page.evaluate(OUTSIDE, f"{selector} td, {selector} caption") == [], selector
        assert page.locator(f"{selector} thead").bounding_box()["height"] <= 1  # visually hidden
        # cards: the column's name is shown next to each value (the header row is hidden)
        label = page.evaluate(f"getComputedStyle(document.querySelector('{selector} td'), "
                              "'::before').content")
        assert label not in ("none", "normal", '""'), label


@pytest.mark.parametrize("width", [390, 1100])
def test_phone_width_tables_header_and_fact_grid_measured(browser, server, spec_registered,
                                                          width):
    context = browser.new_context(viewport={"width": width, "height": 844},
                                  is_mobile=width < 600, accept_downloads=True)
    page = context.new_page()
    problems = PageProblems(page)
    sign_in(page, server)
    header = page.locator("header.top").bounding_box()
    assert header["height"] <= 90, f"the header wraps to {header['height']} px at {width} px"
    name = "attendance-report-of-the-north-east-district-for-march-2024.csv"
    upload_csv(page, name, BAD_CSV.replace(b"S4", b"S%d" % width))
    expect(page.locator("#verdict")).to_contain_text("Accepted with 2 rejected rows")
    if width < 600:
        measure_fits(page, ["#result table"])
        shot(page, "upload-result-phone")
    page.get_by_role("link", name="See all details, download files").click()
    expect(page.locator("#errors-table tbody tr")).to_have_count(2)
    assert page.evaluate(BROKEN_WORDS) == []
    assert page.evaluate("""[...document.querySelectorAll('#facts .id')].map((e) =>
      new Set([...e.getClientRects()].map((r) => Math.round(r.top))).size)""") == [1]  # whole
    if width < 600:
        measure_fits(page, ["#errors-table"])
        line = page.locator("#errors-table tbody tr").first.locator("td").first
        assert line.evaluate("(e) => getComputedStyle(e, '::before').content") == '"Line"'
        page.evaluate("scrollTo(0, 0)")
        shot(page, "upload-detail-phone", full_page=False)  # the header, verdict and facts
        page.get_by_role("link", name="History").click()
        expect(page.locator("#history tbody tr").first).to_contain_text(name)
        measure_fits(page, ["#history"])
        assert page.locator("header.top").bounding_box()["height"] <= 90
        shot(page, "history-phone")
        assert_labelled(page)
        page.get_by_role("link", name="Specs").click()
        expect(page.locator("#specs-table tbody tr").first).to_be_visible()
        measure_fits(page, ["#specs-table"])
    context.close()
    assert problems.errors == []
