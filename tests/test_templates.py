"""Templates of a spec (issue 25 item 4): the header in the spec's own order (never jsonb's or
alphabetical), CSV or .xlsx with a rules sheet and drop-down lists; filled with the example row
they land, through the school-attendance plugin too. Production app, real PostgreSQL."""

from __future__ import annotations

import io
from datetime import date

import aiohttp
import openpyxl

from ingest_helpers import SPEC, landed, read_object, register, upload
from resumable_helpers import create, patch
from ingest_server.stores.specs import Spec, ordered_columns
from plugin_helpers import ATTENDANCE, SCHOOL, SCHOOL_FIELDS, start
from files_helpers import infer

ORDER = ["date", "school_id", "teachers_present", "remarks", "score"]  # as SPEC lists them
ENUM_SPEC = {"program": "grades", "input": {"type": "object", "properties": {
    "student": {"type": "string", "shouldnotnull": True},
    "grade": {"type": "string", "enum": ["A", "B", "C"]},
    "marks": {"type": "integer", "minimum": 35, "maximum": 100},
    "exam_day": {"type": "string", "format": "date"}}, "required": ["student", "grade"]}}
GRADES = {"ingestion_type": "event", "ingestion_name": "grades", "program_name": "exams"}
SPEC_FIELDS = {"ingestion_type": "event", "ingestion_name": "teacherspresent",
               "program_name": "school-attendance"}


async def template(client, headers, name, fmt="csv", example=False, kind="event"):
    resp = await client.get(f"/api/specs/{kind}/{name}/template", headers=headers,
                            params={"format": fmt, "example": "true" if example else "false"})
    assert resp.status == 200, await resp.text()
    return resp, await resp.read()


async def lands_empty(client, headers, body: bytes, filename: str, fields: dict,
                      header: list[str]) -> None:
    """An empty template lands 0 rows / 0 errors (a day with nothing to report), one-shot and
    resumable, with the ``no_rows`` warning and no object written."""
    before = await landed(client)
    status, answer = await upload(client, headers, body, filename=filename, fields=fields)
    assert status == 200, answer
    assert (answer["total_rows"], answer["valid_rows"], answer["invalid_rows"]) == (0, 0, 0)
    assert answer["objects"] == {"valid": None, "errors": None}
    (warning,) = [w for w in answer["warnings"] if w["code"] == "no_rows"]
    assert warning["details"]["header"] == header
    r = await create(client, headers, len(body), dict(fields, filename=filename))
    assert r.status == 201, await r.text()
    r = await patch(client, headers, r.headers["Location"], 0, body)
    assert r.status == 204, await r.text()
    got = await (await client.get(f"/api/ingestion/uploads/{r.headers['Upload-Id']}",
                                  headers=headers)).json()
    assert (got["status"], got["total_rows"], got["invalid_rows"]) == ("uploaded", 0, 0), got
    assert await landed(client) == before


async def test_csv_template_follows_the_spec_order(client, auth_headers):
    await register(client, auth_headers)
    resp, body = await template(client, auth_headers, "teacherspresent")
    assert body == (",".join(ORDER) + "\r\n").encode()
    assert resp.content_type == "text/csv"
    assert 'filename="teacherspresent-template.csv"' in resp.headers["Content-Disposition"]
    listing = await (await client.get("/api/specs", headers=auth_headers)).json()
    assert listing["specs"][0]["columns"] == ORDER
    # uploaded as it is: the header is the spec's (no missing or unknown column), no rows
    await lands_empty(client, auth_headers, body, "template.csv", SPEC_FIELDS, ORDER)
    # with its example row: one row, valid, landed as shown
    _, filled = await template(client, auth_headers, "teacherspresent", example=True)
    status, answer = await upload(client, auth_headers, filled)
    assert (status, answer["valid_rows"], answer["invalid_rows"]) == (200, 1, 0), answer
    rows = await read_object(client, answer["objects"]["valid"])
    assert rows == [ORDER, filled.decode().splitlines()[1].split(",")]


async def test_xlsx_template_rules_lists_and_formats(client, auth_headers):
    await register(client, auth_headers, ENUM_SPEC)
    resp, body = await template(client, auth_headers, "grades", "xlsx", example=True)
    assert resp.content_type.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["data", "rules"]
    data = book["data"]
    assert [c.value for c in data[1]] == ["student", "grade", "marks", "exam_day"]
    student, grade, marks, day = (c.value for c in data[2])
    assert (grade, type(marks), day.date() if hasattr(day, "date") else day) == \
        ("A", int, date.today())
    assert 35 <= marks <= 100
    lists = {str(v.sqref): v.formula1 for v in data.data_validations.dataValidation}
    assert lists == {"B2:B5000": '"A,B,C"'}
    assert data["C2"].number_format == "0" and data["D2"].number_format == "yyyy-mm-dd"
    assert data["A2"].number_format == "@"
    rules = {r[0]: r for r in book["rules"].iter_rows(min_row=2, values_only=True) if r[0]}
    assert rules["grade"][1:4] == ("yes", "yes", "text; one of: A, B, C")
    assert rules["marks"][3] == "a whole number; at least 35; at most 100"
    # the same workbook, uploaded as it is: its rules sheet is not data; the row lands
    status, answer = await upload(client, auth_headers, body, filename="grades.xlsx",
                                  fields=GRADES)
    assert (status, answer["valid_rows"], answer["invalid_rows"]) == (200, 1, 0), answer
    rows = await read_object(client, answer["objects"]["valid"])
    assert rows[1] == [student, "A", str(marks), date.today().isoformat()]
    # empty: the header fits, no rows: 0 rows, 0 errors, nothing written
    _, empty = await template(client, auth_headers, "grades", "xlsx")
    await lands_empty(client, auth_headers, empty, "grades.xlsx", GRADES,
                      ["student", "grade", "marks", "exam_day"])


async def test_template_lands_through_the_school_attendance_plugin(aiohttp_client, tmp_path,
                                                                   clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL])
    await register(client, headers, ATTENDANCE)
    for fmt in ("csv", "xlsx"):
        _, body = await template(client, headers, "teacher_attendance", fmt, example=True)
        status, answer = await upload(client, headers, body, fields=SCHOOL_FIELDS,
                                      filename=f"t.{fmt}")
        assert (status, answer["valid_rows"], answer["invalid_rows"]) == (200, 1, 0), answer
        rows = await read_object(client, answer["objects"]["valid"])
        assert rows[0][:2] == ["date", "school_id"]  # the plugin wants date first
        assert rows[0][-1] == "teacher_attendance_pct"
    # a Cerberus spec with the plugin's DD-MM-YYYY coercer and its rules
    resp = await client.put("/api/specs/event/attendance_dmy", headers=headers, json={
        "cerberus": {
            "date": {"type": "date", "coerce": "dmy_date", "not_in_future": True,
                     "required": True},
            "school_id": {"type": "string", "required": True, "empty": False},
            "state": {"type": "string", "indian_state_code": True, "required": True}}})
    assert resp.status == 201, await resp.text()
    _, body = await template(client, headers, "attendance_dmy", example=True)
    assert body.decode().splitlines()[1] == f"{date.today():%d-%m-%Y},example,KA"
    status, answer = await upload(client, headers, body, fields={
        "ingestion_type": "event", "ingestion_name": "attendance_dmy",
        "program_name": "school-attendance"})
    assert (status, answer["valid_rows"]) == (200, 1), answer


async def test_template_errors(client, auth_headers):
    resp = await client.get("/api/specs/event/nope/template", headers=auth_headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "spec_not_found"
    await register(client, auth_headers)
    resp = await client.get("/api/specs/event/teacherspresent/template", headers=auth_headers,
                            params={"format": "pdf"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_field"
    assert await landed(client) == []


def test_order_of_a_spec_stored_before_columns_were_kept():
    spec = Spec(kind="event", name="x", version=1, sha256="0" * 64, source_format="cqube",
                cerberus={"score": {}, "date": {"required": True}, "remarks": {},
                          "school_id": {"required": True}},
                source={"input": {"required": ["school_id", "date"]}})
    assert ordered_columns(spec) == ["school_id", "date", "remarks", "score"]
    assert ordered_columns(Spec(kind="event", name="x", version=2, sha256="0" * 64,
                                source_format="cqube", cerberus={}, source=None,
                                columns=("b", "a"))) == ["b", "a"]


SAMPLE = (b"date,school_id,grade,teachers,rate,active,visit,note\r\n"
          b"2024-01-15,S1,A,12,0.5,true,15/01/2024,\r\n"
          b"2024-01-16,S2,B,7,1,false,16/01/2024,late\r\n"
          b"2024-01-17,S3,A,9,2.25,true,17/01/2024,\r\n"
          b"2024-01-18,S4,B,3,3,yes,18/01/2024,\r\n")


async def test_infer_a_spec_from_a_csv_then_register_it(client, auth_headers):
    status, body = await infer(client, auth_headers, SAMPLE, "visits 2024.csv")
    assert status == 200, body
    assert body["name"] == "visits_2024" and body["rows_read"] == 4
    spec = body["spec"]
    props = spec["input"]["properties"]
    assert list(props) == ["date", "school_id", "grade", "teachers", "rate", "active", "visit",
                           "note"]
    assert props["date"] == {"type": "string", "format": "date", "shouldnotnull": True}
    assert props["school_id"] == {"type": "string", "shouldnotnull": True}
    assert props["grade"] == {"type": "string", "enum": ["A", "B"], "shouldnotnull": True}
    assert props["teachers"] == {"type": "integer", "shouldnotnull": True}
    assert props["rate"] == {"type": "number", "shouldnotnull": True}
    assert props["active"] == {"type": "boolean", "shouldnotnull": True}
    assert props["visit"]["pattern"] == "^[0-3][0-9]/[01][0-9]/[0-9]{4}$"
    assert props["note"] == {"type": "string"}
    assert spec["input"]["required"] == ["date", "school_id", "grade", "teachers", "rate",
                                         "active", "visit"]
    ev = body["evidence"]
    assert ev["note"] == {"blank": 3, "values": 1, "distinct": 1, "examples": ["late"],
                          "type": "text"}
    assert ev["visit"]["date_formats"] == ["dd/MM/yyyy"]
    # edit (booleans as cQube writes them), register, and the sample lands with it
    props["active"] = {"type": "string", "enum": ["true", "false", "yes"]}
    await register(client, auth_headers, spec)
    status, answer = await upload(client, auth_headers, SAMPLE, fields={
        "ingestion_type": "event", "ingestion_name": "visits_2024", "program_name": "p"})
    assert (status, answer["valid_rows"], answer["invalid_rows"]) == (200, 4, 0), answer


async def test_infer_from_workbook_and_semicolons(client, auth_headers):
    from files_helpers import FILES

    status, body = await infer(client, auth_headers, (FILES / "attendance.xls").read_bytes(),
                               "Attendance.xls", name="attendance")
    assert status == 200, body
    props = body["spec"]["input"]["properties"]
    assert props["date"] == {"type": "string", "format": "date", "shouldnotnull": True}
    assert props["teachers_present"]["type"] == "string"  # "abc" is in the sample
    assert props["score"] == {"type": "number"}
    assert body["evidence"]["school_id"]["blank"] == 1 and body["rows_read"] == 5
    status, body = await infer(client, auth_headers, (FILES / "semicolon.csv").read_bytes(),
                               "s.csv")
    assert list(body["spec"]["input"]["properties"]) == ORDER
    status, body = await infer(client, auth_headers, (FILES / "two-sheets.xlsx").read_bytes(),
                               "two.xlsx")
    assert (status, body["error"]["code"]) == (400, "sheet_required")
    status, body = await infer(client, auth_headers, b"a,b\n1,2\n", "x.csv", kind="nope")
    assert (status, body["error"]["code"]) == (400, "unknown_kind")
