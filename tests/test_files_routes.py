"""Issue 25's real files on every upload route: one-shot (``new_programs``), resumable (tus) and
as the member of a national-programme ZIP (``teacherspresent.csv``, recognised by its bytes
whatever it holds). Each lands the same rows on each route, or is refused the same way with
the option to send, which then makes it land. Production app, real PostgreSQL, local storage;
the files are tests/data/files (make_files.py there says how each was made)."""

from __future__ import annotations

import pytest

from ingest_helpers import build_zip, landed, read_object, register, staged_left, upload
from resumable_helpers import CSV_FIELDS, create, patch
from files_helpers import FILES, HEADER, TEXT_ROWS, WORKBOOK_VALID, spool_left

# file -> (rows landed as valid, (total, valid, invalid), the sheet rows / lines rejected)
LANDS = {
    "attendance.xlsx": (WORKBOOK_VALID, (5, 3, 2), [4, 8]),
    "attendance.xls": (WORKBOOK_VALID, (5, 3, 2), [4, 8]),
    "attendance.ods": (WORKBOOK_VALID, (5, 3, 2), [4, 8]),
    "unicode-text.txt": (TEXT_ROWS, (2, 1, 1), [3]),
    "semicolon.csv": (TEXT_ROWS, (2, 1, 1), [3]),
}
ROUTES = ["one-shot", "tus", "zip member"]
# A ZIP-based workbook inside a ZIP is a nested archive, which a national ZIP never accepts
# (zip bombs): .xls (OLE2) is read there, .xlsx and .ods are refused saying what to do.
NESTED = {"attendance.xlsx", "attendance.ods"}


async def send(client, headers, route: str, content: bytes, filename: str,
               options: dict[str, str] | None = None) -> tuple[int, dict]:
    """Upload ``content`` by ``route``; the answer (for tus: the upload's record)."""
    options = options or {}
    if route == "one-shot":
        return await upload(client, headers, content, filename=filename, params=options)
    if route == "zip member":
        archive = build_zip([("teacherspresent.csv", content)])
        status, body = await upload(client, headers, archive, filename="national.zip",
                                    path="/api/ingestion/national_programs", fields={},
                                    content_type="application/zip", params=options)
        return status, body
    r = await create(client, headers, len(content),
                     dict(CSV_FIELDS, filename=filename, **options))
    assert r.status == 201, await r.text()
    r = await patch(client, headers, r.headers["Location"], 0, content)
    got = await (await client.get(f"/api/ingestion/uploads/{r.headers['Upload-Id']}",
                                  headers=headers)).json()
    return (204 if r.status == 204 else r.status), got


def errors_of(body: dict) -> dict | None:
    """The refusal of an answer: one-shot and ZIP answer it, a tus upload records it."""
    if body.get("error"):
        return body["error"]
    for member in body.get("members") or []:
        if member.get("error"):
            return member["error"]
    return None


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", sorted(LANDS))
async def test_real_file_lands_on_every_route(client, auth_headers, name, route):
    await register(client, auth_headers)
    content = (FILES / name).read_bytes()
    status, body = await send(client, auth_headers, route, content, name)
    if route == "zip member" and name in NESTED:
        assert (status, body["error"]["code"]) == (400, "zip_nested_archive"), body
        assert "workbook" in body["error"]["message"] and "new_programs" in \
            body["error"]["message"]
        assert await landed(client) == [] and await staged_left(client) == []
        return
    assert status in (200, 204) and body["status"] == "uploaded", body
    valid, counts, lines = LANDS[name]
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == counts, body
    objects = body["objects"]
    keys = (objects["valid"], objects["errors"])
    if route == "zip member":
        keys = (objects["valid"][0], objects["errors"][0])
    assert await read_object(client, keys[0]) == valid
    rejected = await read_object(client, keys[1])
    assert sorted(int(r[-2]) for r in rejected[1:]) == lines  # sheet rows / file lines
    assert await staged_left(client) == [] and spool_left(client) == []


@pytest.mark.parametrize("route", ROUTES)
async def test_cp1252_refused_with_its_option_then_lands(client, auth_headers, route):
    await register(client, auth_headers)
    content = (FILES / "ansi-cp1252.csv").read_bytes()
    status, body = await send(client, auth_headers, route, content, "ansi.csv")
    error = errors_of(body)
    assert error and error["code"] == "not_text", body
    assert "encoding=cp1252" in error["message"]
    assert status == 400 or body["status"] == "rejected", body
    assert await landed(client) == [] and await staged_left(client) == []
    status, body = await send(client, auth_headers, route, content, "ansi.csv",
                              {"encoding": "cp1252"})
    assert body["status"] == "uploaded" and body["valid_rows"] == 1, body
    valid = body["objects"]["valid"]
    assert await read_object(client, valid[0] if isinstance(valid, list) else valid) == \
        TEXT_ROWS


@pytest.mark.parametrize("route", ROUTES)
async def test_an_empty_template_lands_zero_rows_on_every_route(client, auth_headers, route):
    await register(client, auth_headers)
    for fmt in ("csv", "xlsx") if route != "zip member" else ("csv",):
        resp = await client.get("/api/specs/event/teacherspresent/template",
                                params={"format": fmt}, headers=auth_headers)
        assert resp.status == 200
        status, body = await send(client, auth_headers, route, await resp.read(),
                                  f"template.{fmt}")
        assert body["status"] == "uploaded", body
        assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (0, 0, 0)
    assert await landed(client) == []


async def test_options_follow_the_file_on_every_route(client, auth_headers):
    """``delimiter`` and ``sheet`` given as options (query, tus metadata) on each route."""
    await register(client, auth_headers)
    semicolon = (FILES / "semicolon.csv").read_bytes()
    two = (FILES / "two-sheets.xlsx").read_bytes()
    for route in ROUTES:
        status, body = await send(client, auth_headers, route, semicolon, "s.csv",
                                  {"delimiter": ";"})
        assert body["valid_rows"] == 1, (route, body)
        assert not [w for w in body.get("warnings") or [] if w["code"] == "delimiter_detected"]
        if route == "zip member":
            continue  # an .xlsx member is a nested archive (above)
        status, body = await send(client, auth_headers, route, two, "two.xlsx")
        assert errors_of(body)["code"] == "sheet_required", (route, body)
        status, body = await send(client, auth_headers, route, two, "two.xlsx",
                                  {"sheet": "February"})
        assert body["valid_rows"] == 2, (route, body)


@pytest.mark.parametrize("name, options", [
    ("attendance.xlsx", {}), ("attendance.xls", {}), ("attendance.ods", {}),
    ("unicode-text.txt", {}), ("semicolon.csv", {}), ("ansi-cp1252.csv", {"encoding": "cp1252"})])
async def test_a_spec_inferred_from_each_real_file(client, auth_headers, name, options):
    """``POST /api/specs/infer`` reads each file as the upload routes do: columns in the file's
    order, the workbooks' dates as dates; the cp1252 file needs its encoding, as to upload."""
    from files_helpers import infer

    status, body = await infer(client, auth_headers, (FILES / name).read_bytes(), name,
                               **options)
    assert status == 200, body
    props = body["spec"]["input"]["properties"]
    assert list(props) == HEADER
    assert props["date"]["format"] == "date", props["date"]
    if name.startswith("attendance"):
        assert body["rows_read"] == 5 and props["score"]["type"] == "number"
    else:
        assert body["evidence"]["remarks"]["examples"][0] == "café au lait"
    if options:
        status, body = await infer(client, auth_headers, (FILES / name).read_bytes(), name)
        assert (status, body["error"]["code"]) == (400, "not_text"), body
        assert body["error"]["details"]["option"] == "encoding=cp1252"
