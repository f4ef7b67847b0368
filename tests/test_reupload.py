"""An error file of ours, fixed by the user and uploaded again: `_line`/`_errors` are dropped."""

import csv
import io

import pytest

from ingest_helpers import read_object, register, upload

BOTH = pytest.mark.parametrize("settings", ["local", "s3"], indirect=True)

HEADER = ["date", "school_id", "teachers_present", "remarks", "score"]
FIRST = b"date,school_id,teachers_present,remarks,score\n" \
        b"2024-01-01,S1,10,ok,1.5\n" \
        b"2024-01-01,S2,abc,\"bad, number\",\n" \
        b'2024-01-01,,7,"multi\nline",3\n' \
        b"2024-01-02,S4,x,\xc3\xa9t\xc3\xa9,\n"
DROPPED = {"code": "error_columns_dropped",
           "message": "this is an error file of ours uploaded again: its columns _line and "
                      "_errors were dropped before validation",
           "details": {"columns": ["_line", "_errors"]}}


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


async def error_file(client, headers, upload_id: str) -> bytes:
    resp = await client.get(f"/api/ingestion/uploads/{upload_id}/errors", headers=headers)
    assert resp.status == 200
    return await resp.read()


@BOTH
async def test_fixed_error_file_lands_without_its_error_columns(client, auth_headers, settings):
    await register(client, auth_headers)
    status, first = await upload(client, auth_headers, FIRST)
    assert status == 200 and first["invalid_rows"] == 3 and first["warnings"] == []
    errors = parse(await error_file(client, auth_headers, first["upload_id"]))
    assert errors[0] == [*HEADER, "_line", "_errors"]
    assert [r[:5] for r in errors[1:]] == [["2024-01-01", "S2", "abc", "bad, number", ""],
                                          ["2024-01-01", "", "7", "multi\nline", "3"],
                                          ["2024-01-02", "S4", "x", "été", ""]]
    # The user fixes two rows in the file and leaves the third one wrong.
    fixed = [list(r) for r in errors]
    fixed[1][2] = "4"
    fixed[2][1] = "S3"
    status, second = await upload(client, auth_headers, to_csv(fixed), filename="fixed.csv")
    assert status == 200, second
    assert second["warnings"] == [DROPPED]
    assert (second["total_rows"], second["valid_rows"], second["invalid_rows"]) == (3, 2, 1)
    valid = await read_object(client, second["objects"]["valid"])
    assert valid == [HEADER,
                     ["2024-01-01", "S2", "4", "bad, number", ""],
                     ["2024-01-01", "S3", "7", "multi\nline", "3"]]
    again = await read_object(client, second["objects"]["errors"])
    # One pair of error columns, and _line is the line in the file just uploaded (the quoted
    # newline of the row before makes it line 5).
    assert again[0] == [*HEADER, "_line", "_errors"]
    assert again[1][:6] == ["2024-01-02", "S4", "x", "été", "", "5"]
    assert again[1][6].startswith("teachers_present: type_error: ")
    assert [(e["line"], e["column"], e["value"]) for e in second["errors_sample"]] == [
        (5, "teachers_present", "x")]
    got = await (await client.get(f"/api/ingestion/uploads/{second['upload_id']}",
                                  headers=auth_headers)).json()
    assert got["warnings"] == [DROPPED]


async def test_error_columns_in_the_spec_are_kept(client, auth_headers):
    spec = {"program": "withline", "input": {"type": "object", "properties": {
        "a": {"type": "string"}, "_line": {"type": "number"}, "_errors": {"type": "string"}}}}
    await register(client, auth_headers, spec)
    status, body = await upload(client, auth_headers, b"a,_line,_errors\nx,1,none\n", fields={
        "ingestion_type": "event", "ingestion_name": "withline", "program_name": "p"})
    assert status == 200 and body["warnings"] == [] and body["valid_rows"] == 1
    assert await read_object(client, body["objects"]["valid"]) == [
        ["a", "_line", "_errors"], ["x", "1", "none"]]


async def test_cells_under_the_error_columns_may_be_missing_or_anything(client, auth_headers):
    await register(client, auth_headers)
    data = b"date,school_id,teachers_present,remarks,score,_line,_errors\n" \
           b"2024-01-01,S1,1,,\n" \
           b"2024-01-01,S2,2,,,7\n" \
           b"2024-01-01,S3,3,,,9,\"x: type_error: y, z\"\n" \
           b"2024-01-01,S4,4,,,9,e,more\n" \
           b"2024-01-01,S5,5,,,9,e,,\n"
    status, body = await upload(client, auth_headers, data)
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (4, 1)
    assert [r[1] for r in (await read_object(client, body["objects"]["valid"]))[1:]] == [
        "S1", "S2", "S3", "S5"]
    assert [(e["line"], e["code"]) for e in body["errors_sample"]] == [(5, "ragged_row")]
    errors = await read_object(client, body["objects"]["errors"])
    assert errors[1][:6] == ["2024-01-01", "S4", "4", "", "", "5"]
    assert len(errors[1]) == len(errors[0]) == 7
