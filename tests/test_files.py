"""Files as programme staff have them (issue 25): workbooks read natively whatever their name,
the encoding from a BOM or refused with the option to send, the delimiter found or named.
Production app, real PostgreSQL, local storage; the files are in tests/data/files (see
make_files.py there for how each was made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_helpers import build_zip, landed, read_object, register, staged_left, upload
from ingest_server.web.appkeys import SETTINGS
from resumable_helpers import CSV_FIELDS, create, patch
from files_helpers import FILES, HEADER, TEXT_ROWS, WORKBOOK_VALID, spool_left


@pytest.mark.parametrize("name", ["attendance.xlsx", "attendance.xls", "attendance.ods"])
@pytest.mark.parametrize("sent_as", ["own name", "renamed .csv", "fields after the file"])
async def test_workbook_lands_like_its_csv(client, auth_headers, name, sent_as):
    await register(client, auth_headers)
    content = (FILES / name).read_bytes()
    kw = {"filename": name if sent_as == "own name" else "attendance.csv",
          "file_first": sent_as == "fields after the file"}
    status, body = await upload(client, auth_headers, content, **kw)
    assert status == 200, body
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (5, 3, 2)
    assert await read_object(client, body["objects"]["valid"]) == WORKBOOK_VALID
    errors = await read_object(client, body["objects"]["errors"])
    # rejected rows keep their sheet row numbers (the header is on row 2, row 6 is empty)
    assert [(r[1], r[2], r[5]) for r in errors[1:]] == [("S2", "abc", "4"), ("", "4", "8")]
    assert {(e["line"], e["code"]) for e in body["errors_sample"]} == {
        (4, "type_error"), (8, "not_nullable")}
    info = [w for w in body["warnings"] if w["code"] == "read_from_workbook"]
    assert info and info[0]["details"] == {"workbook": name.rsplit(".", 1)[1],
                                           "sheet": "Attendance", "header_row": 2}
    assert await staged_left(client) == [] and spool_left(client) == []


async def test_workbook_through_resumable_upload(client, auth_headers):
    await register(client, auth_headers)
    content = (FILES / "attendance.xlsx").read_bytes()
    r = await create(client, auth_headers, len(content), dict(CSV_FIELDS, filename="a.xlsx"))
    assert r.status == 201, await r.text()
    r = await patch(client, auth_headers, r.headers["Location"], 0, content)
    assert r.status == 204, await r.text()
    got = await (await client.get(f"/api/ingestion/uploads/{r.headers['Upload-Id']}",
                                  headers=auth_headers)).json()
    assert (got["valid_rows"], got["invalid_rows"]) == (3, 2)
    assert await read_object(client, got["objects"]["valid"]) == WORKBOOK_VALID


async def test_several_sheets_need_a_name(client, auth_headers):
    await register(client, auth_headers)
    content = (FILES / "two-sheets.xlsx").read_bytes()
    status, body = await upload(client, auth_headers, content, filename="two.xlsx")
    assert (status, body["error"]["code"]) == (400, "sheet_required"), body
    assert "January, February" in body["error"]["message"]
    assert body["error"]["details"]["sheets"] == ["January", "February"]
    status, body = await upload(client, auth_headers, content, filename="two.xlsx",
                                params={"sheet": "Nope"})
    assert (status, body["error"]["code"]) == (400, "sheet_not_found"), body
    assert await landed(client) == []
    status, body = await upload(client, auth_headers, content, filename="two.xlsx",
                                params={"sheet": "February"})
    assert status == 200, body
    assert await read_object(client, body["objects"]["valid"]) == [
        HEADER, ["2024-02-15", "S9", "20", "feb", "2"], ["2024-02-16", "S10", "21", "feb", "2.25"]]


async def test_zip_that_is_not_a_workbook_says_so(client, auth_headers):
    await register(client, auth_headers)
    content = build_zip([("data.csv", b"date,school_id,teachers_present\n2024-01-01,S1,3\n")])
    status, body = await upload(client, auth_headers, content, filename="data.csv")
    assert (status, body["error"]["code"]) == (400, "not_a_csv"), body
    assert "ZIP archive" in body["error"]["message"] and "national_programs" in \
        body["error"]["message"]
    assert await landed(client) == [] and spool_left(client) == []


async def test_utf16_unicode_text_lands_by_its_bom(client, auth_headers):
    """Excel's "Unicode text": UTF-16 LE with a BOM, tab-separated, no option given."""
    await register(client, auth_headers)
    content = (FILES / "unicode-text.txt").read_bytes()
    status, body = await upload(client, auth_headers, content, filename="export.txt")
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (1, 1)
    assert await read_object(client, body["objects"]["valid"]) == TEXT_ROWS
    errors = await read_object(client, body["objects"]["errors"])
    assert errors[1][:5] == ["2024-01-16", "S2", "x", "Müller – straße", "2"]
    assert [w["details"] for w in body["warnings"] if w["code"] == "delimiter_detected"] == [
        {"delimiter": "\t"}]


async def test_cp1252_is_refused_with_the_option_to_send(client, auth_headers):
    await register(client, auth_headers)
    content = (FILES / "ansi-cp1252.csv").read_bytes()
    status, body = await upload(client, auth_headers, content)
    assert (status, body["error"]["code"]) == (400, "not_text"), body
    assert "encoding=cp1252" in body["error"]["message"]
    assert body["error"]["details"]["likely_encoding"] == "cp1252"
    assert body["error"]["details"]["line"] == 2
    assert await landed(client) == []
    status, body = await upload(client, auth_headers, content, params={"encoding": "cp1252"})
    assert status == 200, body
    assert await read_object(client, body["objects"]["valid"]) == TEXT_ROWS


async def test_semicolons_found_from_the_header_or_given(client, auth_headers):
    await register(client, auth_headers)
    content = (FILES / "semicolon.csv").read_bytes()
    status, body = await upload(client, auth_headers, content)
    assert status == 200, body
    assert await read_object(client, body["objects"]["valid"]) == TEXT_ROWS
    detected = [w for w in body["warnings"] if w["code"] == "delimiter_detected"]
    assert detected and "semicolon" in detected[0]["message"]
    status, body = await upload(client, auth_headers, content, params={"delimiter": ";"})
    assert status == 200, body
    assert not [w for w in body["warnings"] if w["code"] == "delimiter_detected"]
    assert await read_object(client, body["objects"]["valid"]) == TEXT_ROWS


async def test_semicolon_quoted_line_break_and_comma(client, auth_headers):
    """Record boundaries follow the delimiter: a quoted line break and a comma inside a cell."""
    await register(client, auth_headers)
    content = (b'date;school_id;teachers_present;remarks;score\r\n'
               b'2024-01-15;S1;12;"two\r\nlines; and, commas";1\r\n2024-01-16;S2;y;;\r\n')
    status, body = await upload(client, auth_headers, content, params={"delimiter": ";"})
    assert status == 200, body
    assert await read_object(client, body["objects"]["valid"]) == [
        HEADER, ["2024-01-15", "S1", "12", "two\r\nlines; and, commas", "1"]]
    assert [e["line"] for e in body["errors_sample"]] == [4]


async def test_one_long_header_cell_names_the_delimiter(client, auth_headers):
    await register(client, auth_headers)
    content = b"day;school;present\r\n2024-01-15;S1;12\r\n"
    status, body = await upload(client, auth_headers, content)
    assert (status, body["error"]["code"]) == (400, "wrong_delimiter"), body
    message = body["error"]["message"]
    assert "';'" in message and "semicolon" in message
    assert message.count("teachers_present") == 1  # missing columns listed once
    assert body["error"]["details"]["missing"] == ["date", "school_id", "teachers_present"]


async def test_bad_delimiter_option(client, auth_headers):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, b"a\n1\n", params={"delimiter": "::"})
    assert (status, body["error"]["code"]) == (400, "invalid_field"), body
    assert body["error"]["details"]["field"] == "delimiter"
