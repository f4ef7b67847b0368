"""Master data at upload, against the real PostgreSQL: dimension files loaded into cQube's
tables exactly as sent, and every key of every event row checked against them."""

import csv
import io

import pytest

from ingest_helpers import form, read_object
from testkit.sql import fetch
from processing_helpers import proc_settings, put_dimension, put_event  # noqa: F401
from master_data_helpers import (DISTRICT, EVENT, SCHOOL, headers, load,  # noqa: F401
                                 pclient, processing_options, rows_csv, setup_event, upload)


async def test_dimension_values_survive_exactly_and_upsert(pclient, headers, clean_db):
    status, _ = await put_dimension(pclient, headers, "school", SCHOOL)
    assert status == 201
    tricky = [["007", "St. Mary's \"Model\" School", "0101", "120"],
              ["S,2", "Comma, Inc", "0101", ""],
              ["s3 ", "  spaced  ", "0102", "3.5"]]
    status, body = await upload(pclient, headers, "dimension", "school",
                                rows_csv(["school_id", "school_name", "district_id", "enrolment"],
                                         tricky))
    assert status == 200, body
    assert body["processing"] == {"status": "loaded", "table": 'dimensions."school"', "rows": 3}
    got = await fetch(clean_db, "SELECT school_id, school_name, district_id, enrolment "
                      "FROM dimensions.school ORDER BY id")
    assert [tuple(r) for r in got] == [("007", "St. Mary's \"Model\" School", "0101", 120.0),
                                       ("S,2", "Comma, Inc", "0101", None),
                                       ("s3 ", "  spaced  ", "0102", 3.5)]
    # A later file updates rows by key and adds new ones; nothing is duplicated. Within one
    # file the last row of a key wins.
    later = [["007", "Renamed", "0101", "121"], ["S4", "New", "0102", "4"],
             ["S4", "Newer", "0102", "5"]]
    status, body = await upload(pclient, headers, "dimension", "school",
                                rows_csv(["district_id", "school_id", "school_name", "enrolment"],
                                         [[r[2], r[0], r[1], r[3]] for r in later]))
    assert status == 200 and body["processing"]["rows"] == 2, body
    got = await fetch(clean_db, "SELECT school_id, school_name, enrolment FROM dimensions.school "
                      "ORDER BY school_id")
    assert [tuple(r) for r in got] == [("007", "Renamed", 121.0), ("S,2", "Comma, Inc", None),
                                       ("S4", "Newer", 5.0), ("s3 ", "  spaced  ", 3.5)]
    loads = await fetch(clean_db, "SELECT dimension, upload_id, rows FROM "
                        "processing_dimension_loads ORDER BY id")
    assert [(r["dimension"], r["rows"]) for r in loads] == [("school", 3), ("school", 2)]
    assert loads[1]["upload_id"] == body["upload_id"]


async def test_json_rows_load_too(pclient, headers, clean_db):
    await put_dimension(pclient, headers, "district", DISTRICT)
    resp = await pclient.post("/api/ingestion/dimension", headers=headers, json={
        "dimension_name": "district",
        "dimension": [{"district_id": "0101", "district_name": "O'Neil \"North\", East"}]})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["processing"]["rows"] == 1
    got = await fetch(clean_db, "SELECT district_id, district_name FROM dimensions.district")
    assert [tuple(r) for r in got] == [("0101", "O'Neil \"North\", East")]


async def test_dry_run_and_rejected_files_load_nothing(pclient, headers, clean_db):
    await put_dimension(pclient, headers, "district", DISTRICT)
    resp = await pclient.post("/api/ingestion/new_programs", headers=headers, params={
        "dry_run": "true"}, data=form(b"district_id,district_name\r\n01,A\r\n", fields={
            "ingestion_type": "dimension", "ingestion_name": "district", "dry_run": "true"}))
    assert resp.status == 200
    assert "processing" not in await resp.json()
    assert await fetch(clean_db, "SELECT * FROM dimensions.district") == []


@pytest.mark.parametrize("processing_options", [{}, {"workers": 2}], ids=["inline", "workers"])
async def test_unknown_keys_are_row_errors_with_their_lines(pclient, headers, clean_db):
    n = 100_000
    schools = [f"S{i:05d}" for i in range(2000)]
    await setup_event(pclient, headers, schools)
    bad = {1234: ("district_id", "D9"), 50_000: ("school_id", "S99999"),
           99_999: ("school_id", "s00001")}
    rows = []
    for i in range(n):
        row = ["01/05/23", "D1" if i % 2 else "D2", schools[i % len(schools)], str(i % 50)]
        if i in bad:
            col, value = bad[i]
            row[1 if col == "district_id" else 2] = value
        rows.append(row)
    status, body = await upload(pclient, headers, "event", "students",
                                rows_csv(["date", "district_id", "school_id", "students"], rows))
    assert status == 200, body
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (n, n - 3, 3)
    sample = [(e["line"], e["column"], e["value"], e["code"]) for e in body["errors_sample"]]
    assert sample == [(1236, "district_id", "D9", "unknown_reference"),
                      (50_002, "school_id", "S99999", "unknown_reference"),
                      (100_001, "school_id", "s00001", "unknown_reference")]
    messages = [e["message"] for e in body["errors_sample"]]
    assert messages[0] == "no district 'D9' (dimensions.district.district_id)"
    assert messages[2] == ("no school 's00001' (dimensions.school.school_id); "
                           "'S00001' exists")
    errors = await read_object(pclient, body["objects"]["errors"])
    assert [r[-2] for r in errors[1:]] == ["1236", "50002", "100001"]
    assert "unknown_reference" in errors[3][-1]
    valid = await read_object(pclient, body["objects"]["valid"])
    assert len(valid) == n - 3 + 1 and valid[1] == rows[0]


@pytest.mark.parametrize("processing_options", [{"key_match": "casefold"}])
async def test_casefold_matches_case_and_blanks(pclient, headers, clean_db):
    await setup_event(pclient, headers, ["S001", "S002"])
    rows = [["01/05/23", "D1", " s001", "1"], ["01/05/23", "d2 ", "S002", "2"],
            ["01/05/23", "D1", "S003", "3"]]
    status, body = await upload(pclient, headers, "event", "students",
                                rows_csv(["date", "district_id", "school_id", "students"], rows))
    assert status == 200, body
    assert body["valid_rows"] == 2
    assert [(e["line"], e["value"]) for e in body["errors_sample"]] == [(4, "S003")]


@pytest.mark.parametrize("processing_options", [{"key_match": "trim"}])
async def test_trim_matches_blanks_and_hints_case(pclient, headers, clean_db):
    await setup_event(pclient, headers, ["S001"])
    rows = [["01/05/23", "D1 ", " S001\t", "1"], ["01/05/23", "D1", "s001", "2"]]
    status, body = await upload(pclient, headers, "event", "students",
                                rows_csv(["date", "district_id", "school_id", "students"], rows))
    assert status == 200 and body["valid_rows"] == 1, body
    assert body["errors_sample"][0]["message"].endswith("; 'S001' exists")


async def test_dimension_not_loaded_is_400(pclient, headers, clean_db):
    await put_dimension(pclient, headers, "district", DISTRICT)
    await put_dimension(pclient, headers, "school", SCHOOL)
    await put_event(pclient, headers, "school-attendance", "students", EVENT)
    await load(pclient, headers, "district", ["district_id", "district_name"], [["D1", "One"]])
    status, body = await upload(pclient, headers, "event", "students",
                                b"date,district_id,school_id,students\r\n01/05/23,D1,S1,1\r\n")
    assert status == 400
    assert body["error"]["code"] == "dimension_not_loaded"
    assert body["error"]["details"]["dimensions"] == ["school"]
    assert await fetch(clean_db, "SELECT id FROM uploads WHERE kind = 'event'") == []


@pytest.mark.parametrize("processing_options", [{"unknown_keys": "keep"}])
async def test_unknown_keys_keep_lands_with_warning(pclient, headers, clean_db):
    await put_dimension(pclient, headers, "district", DISTRICT)
    await put_dimension(pclient, headers, "school", SCHOOL)
    await put_event(pclient, headers, "school-attendance", "students", EVENT)
    await load(pclient, headers, "district", ["district_id", "district_name"], [["D1", "One"]])
    status, body = await upload(pclient, headers, "event", "students",
                                b"date,district_id,school_id,students\r\n01/05/23,D1,S1,1\r\n"
                                b"01/05/23,D7,S1,1\r\n")
    assert status == 200, body
    assert body["valid_rows"] == 1  # district is loaded and still checked
    assert body["errors_sample"][0]["value"] == "D7"
    assert [w["code"] for w in body["warnings"]] == ["dimension_not_loaded"]
    assert body["warnings"][0]["details"]["dimensions"] == ["school"]


async def test_dates_and_integer_metrics(pclient, headers, clean_db):
    await setup_event(pclient, headers, ["S1"])
    rows = [["01/05/23", "D1", "S1", "1"], ["01/05/2023", "D1", "S1", "2"],
            ["2023-05-01", "D1", "S1", "3"], ["2023/05/01", "D1", "S1", "4"],
            ["31/02/23", "D1", "S1", "5"], ["01/05/23", "D1", "S1", "12.7"]]
    status, body = await upload(pclient, headers, "event", "students",
                                rows_csv(["date", "district_id", "school_id", "students"], rows))
    assert status == 200, body
    assert body["valid_rows"] == 3
    errs = [(e["line"], e["column"], e["code"]) for e in body["errors_sample"]]
    assert errs[:2] == [(5, "date", "invalid_date"), (6, "date", "invalid_date")]
    assert "dd/MM/yy, dd/MM/yyyy or yyyy-MM-dd" in body["errors_sample"][0]["message"]
    assert errs[2][:2] == (7, "students") and errs[2][2] != "unknown_reference"
    valid = await read_object(pclient, body["objects"]["valid"])
    assert [r[3] for r in valid[1:]] == ["1", "2", "3"]


async def test_new_load_is_seen_by_the_next_upload(pclient, headers, clean_db):
    await setup_event(pclient, headers, ["S1"])
    content = b"date,district_id,school_id,students\r\n01/05/23,D1,S2,1\r\n"
    status, body = await upload(pclient, headers, "event", "students", content)
    assert body["invalid_rows"] == 1
    await load(pclient, headers, "school", ["school_id", "school_name", "district_id",
                                            "enrolment"], [["S2", "Two", "D1", "1"]])
    status, body = await upload(pclient, headers, "event", "students", content)
    assert status == 200 and body["valid_rows"] == 1, body


async def test_unknown_references_grouped_by_dimension(pclient, headers, clean_db):
    await setup_event(pclient, headers, ["S1", "S2"])
    rows = [["01/05/23", "D1", "S1", "1"], ["01/05/23", "D8", "S9", "1"],
            ["01/05/23", "D8", "S1", "1"], ["01/05/23", "D1", "S, \"9\"", "1"],
            ["01/05/23", "D9", "S9", "1"]]
    status, body = await upload(pclient, headers, "event", "students",
                                rows_csv(["date", "district_id", "school_id", "students"], rows))
    assert status == 200 and body["invalid_rows"] == 4
    resp = await pclient.get(f"/api/processing/uploads/{body['upload_id']}/references",
                             headers=headers)
    got = await resp.json()
    assert resp.status == 200, got
    assert got["unknown_references"] == [
        {"dimension": "district", "column": "district_id", "rows": 3, "distinct_keys": 2,
         "distinct_keys_at_least": False, "examples": ["D8", "D9"]},
        {"dimension": "school", "column": "school_id", "rows": 3, "distinct_keys": 2,
         "distinct_keys_at_least": False, "examples": ["S, \"9\"", "S9"]}]
    from conftest import READ_ONLY_CLIENT, basic
    resp = await pclient.get("/api/ingestion/generatejwt", headers=basic(*READ_ONLY_CLIENT,
                                                                         json=True))
    other = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    resp = await pclient.get(f"/api/processing/uploads/{body['upload_id']}/references",
                             headers=other)
    assert resp.status == 404


async def test_key_files_are_built_by_the_load(pclient, headers, clean_db, proc_settings):  # noqa: F811
    await setup_event(pclient, headers, ["S1", "S2"])
    keys = proc_settings.path(proc_settings.server.state_dir) / "processing" / "keys"
    built = sorted(p.name.split(".")[:2] == ["school", "school_id"] for p in keys.iterdir())
    assert built.count(True) == 1  # the school load built the school_id files (no upload yet)
    folder = next(p for p in keys.iterdir() if p.name.startswith("school.school_id."))
    from ingest_server.processing.keys import KeyFiles, KeyIndex
    index = KeyIndex(KeyFiles(base=str(folder / "k"), dimension="school", column="school_id",
                              count=2))
    assert index.contains("S1", "exact") and not index.contains("s1", "exact")
    assert index.contains(" s1", "casefold") and index.near("s2 ") == "S2"
