"""Every upload route that lands an event checks its grammar's keys (one-shot CSV, national ZIP,
tus — a CSV or a ZIP —, JSON rows), and a key matched other than as written (key_match, cQube's
'…' quotes) lands as its dimension stores it. Against the real PostgreSQL."""

import pytest

from ingest_helpers import build_zip, form, read_object
from testkit.sql import fetch
from processing_helpers import proc_settings, put_dimension, put_event  # noqa: F401
from resumable_helpers import create, patch
from master_data_helpers import (DISTRICT, EVENT, SCHOOL, headers, load,  # noqa: F401
                                 pclient, processing_options, rows_csv, setup_event, upload)

HEADER = ["date", "district_id", "school_id", "students"]
ROWS = [["01/05/23", "D1", "S001", "1"], ["01/05/23", "D2", "S404", "2"],
        ["02/05/23", "D1", "S002", "3"]]
UNKNOWN = [(3, "school_id", "S404", "unknown_reference")]


async def via_csv(client, headers, content):
    return await upload(client, headers, "event", "students", content)


async def via_zip(client, headers, content):
    resp = await client.post("/api/ingestion/national_programs", headers=headers,
                             data=form(build_zip([("students.csv", content)]), fields={},
                                       filename="national.zip",
                                       content_type="application/zip"))
    return resp.status, await resp.json()


async def via_tus(client, headers, content, archive=False):
    fields = ({"filename": "national.zip", "ingestion_type": "national"} if archive else
              {"filename": "students.csv", "ingestion_type": "event", "ingestion_name":
               "students", "program_name": "school-attendance"})
    data = build_zip([("students.csv", content)]) if archive else content
    resp = await create(client, headers, len(data), fields=fields)
    assert resp.status == 201, await resp.text()
    resp = await patch(client, headers, resp.headers["Location"], 0, data)
    assert resp.status == 204, await resp.text()
    record = await client.get(resp.headers["Content-Location"], headers=headers)
    return record.status, await record.json()


async def via_tus_zip(client, headers, content):
    return await via_tus(client, headers, content, archive=True)


async def via_json(client, headers, content):
    lines = content.decode().split("\r\n")[1:-1]
    rows = [dict(zip(HEADER, line.split(","))) for line in lines]
    for row in rows:
        row["students"] = int(row["students"])
    resp = await client.post("/api/ingestion/event", headers=headers, json={
        "event_name": "students", "program_name": "school-attendance", "event": rows})
    return resp.status, await resp.json()


@pytest.mark.parametrize("send", [via_csv, via_zip, via_tus, via_tus_zip, via_json],
                         ids=["csv", "zip", "tus", "tus-zip", "json"])
async def test_every_route_checks_the_keys(pclient, headers, clean_db, send):
    await setup_event(pclient, headers, ["S001", "S002"])
    status, body = await send(pclient, headers, rows_csv(HEADER, ROWS))
    assert status == 200, body
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (3, 2, 1), body
    assert [(e["line"], e["column"], e["value"], e["code"])
            for e in body["errors_sample"]] == UNKNOWN
    valid = body["objects"]["valid"]
    valid = valid[0] if isinstance(valid, list) else valid
    assert await read_object(pclient, valid) == [HEADER, ROWS[0], ROWS[2]]


async def test_zip_member_with_an_unloaded_dimension_is_refused_naming_it(pclient, headers,
                                                                          clean_db):
    await put_dimension(pclient, headers, "district", DISTRICT)
    await put_dimension(pclient, headers, "school", SCHOOL)
    await put_event(pclient, headers, "school-attendance", "students", EVENT)
    await load(pclient, headers, "district", ["district_id", "district_name"], [["D1", "One"]])
    status, body = await via_zip(pclient, headers, rows_csv(HEADER, ROWS[:1]))
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "dimension_not_loaded" and error["details"]["member"] == "students"
    assert error["message"].startswith("students.csv: ")


async def test_an_event_in_two_programmes_is_unchecked_in_a_zip_with_a_warning(pclient, headers,
                                                                               clean_db):
    await setup_event(pclient, headers, ["S001", "S002"])
    status, body = await put_event(pclient, headers, "other-programme", "students", EVENT)
    assert status in (200, 201), body
    status, body = await via_zip(pclient, headers, rows_csv(HEADER, ROWS))
    assert status == 200 and body["valid_rows"] == 3, body
    warnings = [w for m in body["members"] for w in m.get("warnings", [])] + \
        body.get("warnings", [])
    assert any(w["code"] == "grammar_ambiguous" for w in warnings), body


@pytest.mark.parametrize("processing_options", [{"key_match": "casefold"}])
async def test_a_key_matched_but_for_case_and_blanks_lands_as_stored(pclient, headers,
                                                                     clean_db):
    await setup_event(pclient, headers, ["S001", "S002"])
    rows = [["01/05/23", "D1", " s001 ", "1"], ["01/05/23", "d2", "S002", "2"],
            ["01/05/23", "D1", "S001", "3"]]
    status, body = await via_csv(pclient, headers, rows_csv(HEADER, rows))
    assert status == 200 and body["valid_rows"] == 3, body
    assert await read_object(pclient, body["objects"]["valid"]) == [
        HEADER, ["01/05/23", "D1", "S001", "1"], ["01/05/23", "D2", "S002", "2"],
        ["01/05/23", "D1", "S001", "3"]]
    rewritten = [w for w in body["warnings"] if w["code"] == "keys_rewritten"]
    assert rewritten and rewritten[0]["details"] == {"rows": 2}, body["warnings"]


@pytest.mark.parametrize("processing_options", [{"key_match": "casefold"}])
async def test_a_key_matching_two_stored_keys_but_for_case_is_an_error(pclient, headers,
                                                                       clean_db):
    await setup_event(pclient, headers, ["Ab", "aB", "x"])
    rows = [["01/05/23", "D1", "aB", "1"], ["01/05/23", "D1", " Ab", "2"],
            ["01/05/23", "D1", "ab", "3"], ["01/05/23", "D1", "X", "4"]]
    status, body = await via_csv(pclient, headers, rows_csv(HEADER, rows))
    assert status == 200 and body["valid_rows"] == 3, body
    assert [(e["line"], e["code"]) for e in body["errors_sample"]] == \
        [(4, "unknown_reference")]
    assert "several keys match it but for blanks or case" in body["errors_sample"][0]["message"]
    assert [r[2] for r in await read_object(pclient, body["objects"]["valid"])] == \
        ["school_id", "aB", "Ab", "x"]


async def test_cqube_quoted_values_are_stored_and_matched_without_their_quotes(pclient, headers,
                                                                               clean_db):
    """cQube's producers write text as 'S001'; cQube reads dimension and event files with ' as
    the quote character: the value is S001 on both sides."""
    await put_dimension(pclient, headers, "district", DISTRICT)
    await put_dimension(pclient, headers, "school", SCHOOL)
    await put_event(pclient, headers, "school-attendance", "students", EVENT)
    await load(pclient, headers, "district", ["district_id", "district_name"],
               [["'D1'", "'O''Neil, North'"], ["D2", "O'Brien"]])
    await load(pclient, headers, "school", ["school_id", "school_name", "district_id",
                                            "enrolment"],
               [["'S001'", "'St. Mary''s'", "'D1'", "12"], ["007", "'x", "D2", "3"]])
    got = await fetch(clean_db, "SELECT district_id, district_name FROM dimensions.district "
                      "ORDER BY 1")
    assert [tuple(r) for r in got] == [("D1", "O'Neil, North"), ("D2", "O'Brien")]
    got = await fetch(clean_db, "SELECT school_id, school_name, district_id, enrolment "
                      "FROM dimensions.school ORDER BY 1")
    assert [tuple(r) for r in got] == [("007", "'x", "D2", 3.0),
                                       ("S001", "St. Mary's", "D1", 12.0)]
    rows = [["'01/05/23'", "'D1'", "'S001'", "1"], ["01/05/23", "D2", "007", "2"],
            ["01/05/23", "D2", "'s001'", "3"], ["01/05/23", "D2", "'007", "4"]]
    status, body = await via_csv(pclient, headers, rows_csv(HEADER, rows))
    assert status == 200 and body["valid_rows"] == 2, body
    assert await read_object(pclient, body["objects"]["valid"]) == [
        HEADER, ["01/05/23", "D1", "S001", "1"], ["01/05/23", "D2", "007", "2"]]
    assert [(e["line"], e["value"], e["message"]) for e in body["errors_sample"]] == [
        (4, "'s001'", "no school \"'s001'\" (dimensions.school.school_id); 'S001' exists"),
        (5, "'007", "no school \"'007\" (dimensions.school.school_id)")]


def test_key_tables_match_as_cqube_reads_keys(tmp_path):
    """The key files alone: quoted and unquoted stored keys, blanks, case, ambiguity."""
    from ingest_server.processing.keys import Ambiguous, KeyFiles, KeyIndex, write_key_files
    keys = ["S1", "'S1'", "'S2'", " S3", "Ab", "aB", "O'Brien", "''"]
    source = tmp_path / "keys.csv"
    source.write_text("".join(f'"{k}"\n' for k in keys))
    assert write_key_files(source, tmp_path / "k", len(keys)) == len(keys)
    index = KeyIndex(KeyFiles(base=str(tmp_path / "k"), dimension="d", column="c",
                              count=len(keys)))
    assert index.match("S1", "exact") == "S1"          # 'S1' stored too: S1 itself wins
    assert index.match("'S1'", "exact") == "S1"
    assert index.match("S2", "exact") == "'S2'"        # stored quoted: landed as stored
    assert index.match("'S2'", "exact") == "'S2'"
    assert index.match("S3", "exact") is None and index.match("S3", "trim") == " S3"
    assert index.match("AB", "trim") is None
    assert isinstance(index.match("AB", "casefold"), Ambiguous)
    assert index.match("aB", "casefold") == "aB"
    assert index.match("O'Brien", "exact") == "O'Brien"
    assert index.match("'O''Brien'", "exact") == "O'Brien"
    assert index.match("", "exact") == "''"
    assert index.match(" s1", "casefold") == "S1" and index.match("S1 ", "trim") == "S1"
    assert index.match(" 'S2' ", "trim") is None and index.match("S2 ", "trim") == "'S2'"
    assert index.near("s1 ") == "S1" and index.near("zz") is None
