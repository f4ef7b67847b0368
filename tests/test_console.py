"""The web console in a real browser (Debian's Chromium via Playwright) against a real server
process, a real PostgreSQL and real local storage: sign-in, a CSV upload with bad rows, the error
table, both downloads, retraction, the corrected file sent again, a ZIP upload, registering a
spec, history filters, one-click sign-in on an open server, the security headers; and no console
error anywhere. ``INGEST_SCREENSHOTS=DIR`` also saves screenshots of the main pages there."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from console_browser import server, spec_registered

playwright_api = pytest.importorskip("playwright.sync_api")

from console_browser import (AUDITOR, BAD_CSV, OFFICER, OTHER, PageProblems, api,  # noqa: E402
                             assert_labelled, browser, page, read_csv,  # noqa: F401
                             server_config, shot, sign_in, token_of, upload_csv)
from ingest_helpers import SPEC, build_zip  # noqa: E402
from testkit.server_process import ServerProcess, free_port  # noqa: E402

expect = playwright_api.expect


# --- the page itself -------------------------------------------------------------------------

def test_console_is_served_with_a_strict_csp_and_etag(server):
    with urllib.request.urlopen(server.url + "/", timeout=10) as resp:
        html = resp.read().decode()
        headers = resp.headers
    csp = headers["Content-Security-Policy"]
    for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                 "frame-ancestors 'none'", "object-src 'none'"):
        assert part in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"].startswith("text/html")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert " style=" not in html and "<style" not in html
    for src in re.findall(r'(?:src|href)="(/console/[^"]+)"', html):
        with urllib.request.urlopen(server.url + src, timeout=10) as resp:
            etag = resp.headers["ETag"]
            assert resp.headers["Content-Security-Policy"] == csp
        req = urllib.request.Request(server.url + src, headers={"If-None-Match": etag})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("expected 304")
        except urllib.error.HTTPError as e:
            assert e.code == 304


def test_sign_in_errors_in_words_token_in_session_storage_and_sign_out(page, server):
    page.problems.expect(401)
    page.goto(server.url + "/")
    shot(page, "sign-in")
    assert_labelled(page)
    page.get_by_label("Client id").fill(OFFICER[0])
    page.get_by_label("Client secret").fill("wrong-secret")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert.locator("strong")).to_have_text("Wrong client id or secret")  # not "Please sign in"
    expect(alert).to_contain_text("Invalid client credentials.")
    assert "{" not in alert.inner_text()  # words, never raw JSON
    assert page.locator("#open-signin").count() == 0  # the endpoint is not open here
    page.get_by_label("Client secret").fill(OFFICER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {OFFICER[0]}")).to_be_visible()
    stored = page.evaluate("sessionStorage.getItem('ingest-console-token')")
    assert json.loads(stored)["token"].count(".") == 2
    assert page.evaluate("document.cookie") == ""
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_csv_with_bad_rows_error_table_downloads_reupload_and_retract(page, server,
                                                                       spec_registered):
    sign_in(page, server)
    upload_csv(page, "attendance-march.csv", BAD_CSV)
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("Accepted with 2 rejected rows")
    expect(verdict).to_contain_text("2 valid rows landed")
    first = page.locator("#result table tbody tr")
    expect(first).to_have_count(2)
    assert first.nth(0).locator("td").all_inner_texts()[:4] == [
        "3", "teachers_present", "abc", "type_error"]
    shot(page, "upload-result")
    assert_labelled(page)

    page.get_by_role("link", name="See all details, download files").click()
    expect(page.get_by_role("heading", name="Upload: attendance-march.csv")).to_be_visible()
    upload_id = page.url.rsplit("/", 1)[1]
    record = api(server, f"/api/ingestion/uploads/{upload_id}", token=token_of(server, OFFICER))
    expect(page.locator(".facts")).to_contain_text(f"Sent by{OFFICER[0]}")
    rows = page.locator("#errors-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#code-counts")).to_contain_text("type_error 1")
    page.get_by_label("Code", exact=True).select_option("type_error")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("abc")
    page.get_by_label("Code", exact=True).select_option("")
    page.get_by_label("Column", exact=True).select_option("school_id")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(0)).to_have_text("4")
    page.get_by_label("Column", exact=True).select_option("")
    shot(page, "upload-detail")
    assert_labelled(page)

    storage = server.storage
    valid_key, errors_key = record["objects"]["valid"], record["objects"]["errors"]
    with page.expect_download() as got:
        page.locator("#dl-errors").click()
    exact = Path(got.value.path()).read_bytes()
    assert exact == (storage / errors_key).read_bytes()  # byte for byte
    with page.expect_download() as got:
        page.locator("#dl-errors-safe").click()
    safe = read_csv(Path(got.value.path()).read_bytes())
    assert safe[1][3] == "'=HYPERLINK(\"http://evil\")"
    assert safe[1][:3] == ["2024-01-02", "S2", "abc"]
    with page.expect_download() as got:
        page.locator("#dl-valid").click()
    assert Path(got.value.path()).read_bytes() == (storage / valid_key).read_bytes()
    assert read_csv((storage / valid_key).read_bytes())[1:] == [
        ["2024-01-01", "S1", "5", "fine"], ["2024-01-04", "S4", "6", "fine"]]

    # Fix the error file in place (its _line/_errors columns too) and send it again.
    fixed = exact.replace(b"abc", b"8").replace(b"2024-01-03,,7", b"2024-01-03,S3,7")
    page.set_input_files("#corrected", files=[{"name": "attendance-march-fixed.csv",
                                               "mimeType": "text/csv", "buffer": fixed}])
    expect(page.locator("#verdict")).to_contain_text("Accepted: every row is valid")
    expect(page.locator("#verdict")).to_contain_text("2 rows landed")
    page.get_by_role("link", name="See all details, download files").click()
    again_id = page.url.rsplit("/", 1)[1]
    again = api(server, f"/api/ingestion/uploads/{again_id}", token=token_of(server, OFFICER))
    assert (again["ingestion_name"], again["program_name"]) == ("teacherspresent",
                                                                 "school-attendance")
    assert read_csv((storage / again["objects"]["valid"]).read_bytes()) == [
        ["date", "school_id", "teachers_present", "remarks"],
        ["2024-01-02", "S2", "8", '=HYPERLINK("http://evil")'],
        ["2024-01-03", "S3", "7", "missing school"]]

    # Retract the first upload: confirmed in a dialog, its objects gone, the record kept.
    page.goto(f"{server.url}/#/uploads/{upload_id}")
    expect(page.get_by_role("heading", name="Upload: attendance-march.csv", exact=True)) \
        .to_be_visible()
    page.get_by_role("button", name="Retract…").click()
    page.get_by_role("button", name="Keep it").click()
    assert (storage / valid_key).exists()
    page.get_by_role("button", name="Retract…").click()
    shot(page, "retract-dialog", full_page=False)
    page.get_by_role("button", name="Retract", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("Retracted: its files were deleted")
    expect(page.locator("#verdict")).to_contain_text(f"By {OFFICER[0]}")
    assert not (storage / valid_key).exists() and not (storage / errors_key).exists()
    gone = api(server, f"/api/ingestion/uploads/{upload_id}", token=token_of(server, OFFICER))
    assert gone["status"] == "retracted" and gone["retracted_by"] == OFFICER[0]
    assert '"event": "upload_retracted"' in server.log() or "upload_retracted" in server.log()


def test_zip_upload_shows_the_verdict(page, server, spec_registered):
    sign_in(page, server)
    archive = build_zip([("teacherspresent.csv", BAD_CSV), ("attendance.csv", BAD_CSV)])
    page.get_by_label("A national programme ZIP").check()
    expect(page.get_by_label("Spec", exact=True)).to_be_hidden()
    page.set_input_files("#file", files=[{"name": "national.zip", "mimeType": "application/zip",
                                          "buffer": archive}])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("Accepted with 4 rejected rows")
    expect(page.locator("#result table tbody tr")).to_have_count(4)
    expect(page.locator("#result table tbody tr").first).to_contain_text("teacherspresent: 3")


def test_file_level_refusal_is_explained_in_words(page, server, spec_registered):
    page.problems.expect(400)
    sign_in(page, server)
    upload_csv(page, "wrong.csv", b"date,school\r\n2024-01-01,S1\r\n")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Columns are missing")
    text = alert.inner_text()
    assert "{" not in text
    assert text.count("teachers_present") == 1, text  # the missing columns listed once
    progress = page.locator("#progress-text")
    expect(progress).to_contain_text("Not accepted")
    expect(progress).not_to_contain_text("checking the last rows")


def test_history_filters_and_isolation(page, server, spec_registered):
    sign_in(page, server, OTHER)
    upload_csv(page, "other-office-only.csv", BAD_CSV.replace(b"S4", b"S9"))
    expect(page.locator("#verdict")).to_contain_text("Accepted")
    page.get_by_role("link", name="History").click()
    expect(page.locator("#history tbody tr")).to_have_count(1)  # not the officer's uploads
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, server)
    upload_csv(page, "history-probe.csv", BAD_CSV.replace(b"S4", b"S8"), spec="attendance",
               program="probe-programme")
    expect(page.locator("#verdict")).to_contain_text("Accepted")
    page.get_by_role("link", name="History").click()
    table = page.locator("#history tbody tr")
    expect(table.first).to_contain_text("history-probe.csv")  # newest first
    expect(page.locator("#history")).not_to_contain_text("other-office-only.csv")
    shot(page, "history")
    assert_labelled(page)
    page.get_by_label("File name contains").fill("PROBE")
    page.get_by_role("button", name="Filter").click()
    expect(table).to_have_count(1)
    expect(page.locator(".pager")).to_contain_text("1–1 of 1")
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_label("File name contains")).to_have_value("")
    page.get_by_label("Programme", exact=True).fill("probe-programme")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".pager")).to_contain_text("1–1 of 1")
    page.get_by_label("Status").select_option("retracted")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".pager")).to_contain_text("No uploads match.")


def test_admin_sees_every_clients_uploads_and_who_sent_them(page, server, spec_registered):
    sign_in(page, server, OTHER)
    upload_csv(page, "seen-by-the-auditor.csv", BAD_CSV.replace(b"S4", b"S6"))
    expect(page.locator("#verdict")).to_contain_text("Accepted")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, AUDITOR)
    expect(page.get_by_text("Read only")).to_be_visible()  # admin without ingest: no uploading
    page.get_by_role("link", name="History").click()
    expect(page.locator("#history thead")).to_contain_text("Sent by")
    row = page.locator("#history tbody tr", has_text="seen-by-the-auditor.csv")
    expect(row).to_contain_text(OTHER[0])
    row.get_by_role("link").click()
    expect(page.get_by_role("button", name="Retract…")).to_be_visible()  # admin retracts any
    expect(page.locator("#upload-corrected")).to_have_count(0)  # no ingest scope: no re-upload


def test_register_spec_with_errors_next_to_the_field_then_browse_and_diff(page, server):
    page.problems.expect(400)
    sign_in(page, server)
    page.get_by_role("link", name="Specs").click()
    bad = {"program": "enrolment", "input": {"type": "object", "properties": {
        "school_id": {"type": "string", "shouldnotnull": True},
        "pupils": {"type": "integer", "bogus_rule": 3}}, "required": ["school_id"]}}
    page.get_by_label("Spec JSON").fill(json.dumps(bad, indent=2))
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("bogus_rule")
    expect(page.locator("#reg-fields li.bad")).to_contain_text("pupils")
    expect(page.locator("#reg-fields li.bad")).to_contain_text('keyword "bogus_rule"')
    shot(page, "register-spec-error")
    assert_labelled(page)
    good = json.loads(json.dumps(bad))
    del good["input"]["properties"]["pupils"]["bogus_rule"]
    page.get_by_label("Spec JSON").fill(json.dumps(good))
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#reg-result")).to_contain_text("Spec registered")
    expect(page.get_by_label("Spec JSON")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#specs-table tbody tr", has_text="enrolment").locator("td").nth(2)).to_have_text("1")
    good["input"]["properties"]["pupils"]["shouldnotnull"] = True
    good["input"]["properties"]["remarks"] = {"type": "string"}
    page.get_by_label("Spec JSON").fill(json.dumps(good))
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#reg-result")).to_contain_text("version 2")
    expect(page.locator("#specs-table tbody tr", has_text="enrolment").locator("td").nth(2)) \
        .to_have_text("2")  # the list refreshed after the registration
    page.get_by_role("link", name="Open it").click()
    expect(page.get_by_role("heading", name="Spec: enrolment")).to_be_visible()
    columns = page.locator("#columns tbody tr")
    expect(columns).to_have_count(3)
    expect(columns.filter(has_text="school_id")).to_contain_text("text, required, not blank")
    expect(columns.filter(has_text="remarks")).to_contain_text("text, optional")
    diff = page.locator("#diff-table tbody")
    expect(diff.locator("tr.added")).to_contain_text("remarks")
    expect(diff.locator("tr.changed")).to_contain_text("pupils")
    shot(page, "spec")
    assert_labelled(page)
    with page.expect_download() as got:
        page.get_by_role("button", name="Empty CSV header").click()
    # the spec's own order (as registered), never alphabetical (issue 25)
    assert Path(got.value.path()).read_bytes() == b"school_id,pupils,remarks\r\n"
    assert got.value.suggested_filename == "enrolment-template.csv"
    page.get_by_role("link", name="Specs").click()
    page.get_by_label("Search specs").fill("enrol")
    expect(page.locator("#specs-table tbody tr")).to_have_count(1)


def test_a_spec_with_many_versions_lists_them_all_and_compares_the_newest(page, server):
    """The versions listing is paged (issue 21 item 9): the console lists every version from
    the summaries and compares among the five newest, the page that comes with schemas."""
    token = token_of(server, OFFICER)
    for n in range(7):
        spec = {"program": "manyversions", "input": {"type": "object", "properties": {
            "school_id": {"type": "string"}, f"col_{n}": {"type": "string"}}}}
        api(server, "/api/spec/event", token=token, method="POST", body=spec)
    sign_in(page, server)
    page.goto(server.url + "/#/specs/event/manyversions")
    expect(page.get_by_role("heading", name="Spec: manyversions")).to_be_visible()
    expect(page.locator("#versions li")).to_have_count(7)
    expect(page.locator("#versions li").first).to_contain_text("version 7")
    expect(page.locator("#versions li").last).to_contain_text("version 1")
    expect(page.locator("#diff-from option")).to_have_count(5)
    expect(page.get_by_text("The 5 newest versions can be compared.")).to_be_visible()
    diff = page.locator("#diff-table tbody")
    expect(diff.locator("tr.added")).to_contain_text("col_6")
    expect(diff.locator("tr.removed")).to_contain_text("col_5")


def test_phone_width_and_keyboard_sign_in(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(server.url + "/")
    page.keyboard.press("Tab")  # the skip link first, then the form in order
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == page.get_by_label("Client id") \
        .get_attribute("id")
    page.keyboard.type(OFFICER[0])
    page.keyboard.press("Tab")
    page.keyboard.type(OFFICER[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Upload a file")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    shot(page, "upload-phone")
    context.close()
    assert problems.errors == []


@pytest.fixture
def open_server(pg_dsn, tmp_path):
    """A server whose token endpoint is open: the console offers the one-click sign-in."""
    proc = ServerProcess(server_config(tmp_path, pg_dsn, open_token_endpoint=True), free_port(),
                         tmp_path / "server.log")
    proc.start()
    proc.storage = tmp_path / "storage"
    yield proc
    proc.kill()


def test_one_click_sign_in_when_the_token_endpoint_is_open(page, open_server):
    page.goto(open_server.url + "/")
    page.get_by_role("button", name="Continue without credentials").click()
    expect(page.get_by_role("heading", name="Upload a file")).to_be_visible()
    expect(page.get_by_text("Signed in as anonymous")).to_be_visible()


def test_one_click_sign_in_may_retract_its_own_upload(page, open_server):
    """Issue 21 item 17: after the one-click sign-in the console compared the upload's client
    ("anonymous") with the label it shows ("anonymous (open token endpoint)") and hid
    "Retract…" on the user's own uploads."""
    with urllib.request.urlopen(urllib.request.Request(
            open_server.url + "/api/ingestion/generatejwt",
            headers={"Accept": "application/json"}), timeout=10) as resp:
        open_token = json.loads(resp.read())["token"]
    api(open_server, "/api/spec/event", token=open_token, method="POST", body=SPEC)
    page.goto(open_server.url + "/")
    page.get_by_role("button", name="Continue without credentials").click()
    expect(page.get_by_text("Signed in as anonymous (open token endpoint)")).to_be_visible()
    upload_csv(page, "open.csv", BAD_CSV)
    expect(page.locator("#verdict")).to_contain_text("Accepted with 2 rejected rows")
    page.get_by_role("link", name="See all details, download files").click()
    expect(page.get_by_role("heading", name="Upload: open.csv")).to_be_visible()
    upload_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".facts")).to_contain_text("Sent byanonymous")
    page.get_by_role("button", name="Retract…").click()
    page.get_by_role("button", name="Retract", exact=True).click()
    expect(page.locator("#verdict")).to_contain_text("Retracted: its files were deleted")
    record = api(open_server, f"/api/ingestion/uploads/{upload_id}", token=open_token)
    assert (record["status"], record["retracted_by"]) == ("retracted", "anonymous")
    assert not (open_server.storage / record["objects"]["valid"]).exists()


def test_resumable_upload_with_tus_when_the_server_has_it(page, server, spec_registered):
    """With ``/api/ingestion/resumable`` (tus) on the server, the vendored tus-js-client sends the
    file and the answer is the same upload record; without it the option is not offered and the
    upload goes as one request (the other tests)."""
    with urllib.request.urlopen(server.url + "/console/settings.json", timeout=10) as resp:
        has_tus = json.loads(resp.read())["resumable"]
    sign_in(page, server)
    option = page.get_by_label("Resumable upload (survives a lost connection; for big files)")
    if not has_tus:
        expect(option).to_be_hidden()
        pytest.skip("this server has no /api/ingestion/resumable: the console degrades to one request")
    expect(option).to_be_checked()
    upload_csv(page, "resumable-march.csv", BAD_CSV.replace(b"S4", b"S7"))
    expect(page.locator("#verdict")).to_contain_text("Accepted with 2 rejected rows")
    page.get_by_role("link", name="See all details, download files").click()
    upload_id = page.url.rsplit("/", 1)[1]
    record = api(server, f"/api/ingestion/uploads/{upload_id}", token=token_of(server, OFFICER))
    assert (record["filename"], record["client"]) == ("resumable-march.csv", OFFICER[0])
    assert read_csv((server.storage / record["objects"]["valid"]).read_bytes())[1:] == [
        ["2024-01-01", "S1", "5", "fine"], ["2024-01-04", "S7", "6", "fine"]]


def test_progress_shows_speed_and_time_left_on_a_slow_link(page, server, spec_registered):
    """Chromium's network emulation slows the upload to ~1 MB/s, so the progress events of
    XMLHttpRequest show up: bytes sent, speed and time left, then the answer."""
    sign_in(page, server)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 1_000_000})
    rows = b"".join(b"2024-01-01,S%d,%d,note\r\n" % (i, i % 50) for i in range(120_000))
    upload_csv(page, "big-slow.csv", BAD_CSV + rows)
    text = page.locator("#progress-text")
    expect(text).to_contain_text(re.compile(r"MB of [\d.]+ MB · [\d.]+ (KB|MB)/s · .* left"))
    assert page.evaluate("document.getElementById('progress').value") > 0
    expect(page.locator("#verdict")).to_contain_text("Accepted with 2 rejected rows",
                                                     timeout=60_000)
    expect(text).to_contain_text("Sent 3.")
