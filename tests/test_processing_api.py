"""Registering cQube grammars over HTTP, against the real PostgreSQL: the tables and spec rows
cQube's services read, versions, the 409s, and grammars as ingestion specs."""

import json

import pytest

from testkit.sql import fetch
from processing_helpers import (CSV, VSK, headers, pclient, proc_settings, put_dimension,  # noqa: F401
                                put_event)


def dim_text(name):
    return (VSK / "dimensions" / f"{name}-dimension.grammar.csv").read_text()


async def test_dimension_grammar_creates_cqube_table_and_spec_row(pclient, headers, clean_db):
    status, body = await put_dimension(pclient, headers, "school", dim_text("school"))
    assert status == 201, body
    assert body["created"] is True and body["grammar"]["version"] == 1
    assert body["table"] == 'dimensions."school"'
    cols = await fetch(clean_db, "SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'dimensions' AND table_name = 'school' "
                       "ORDER BY ordinal_position")
    assert [(c["column_name"], c["data_type"]) for c in cols][:3] == [
        ("id", "integer"), ("school_id", "character varying"), ("udise_code", "character varying")]
    assert cols[-1]["column_name"] == "longitude" and cols[-1]["data_type"] == "double precision"
    unique = await fetch(clean_db, "SELECT conname FROM pg_constraint c JOIN pg_class t ON "
                         "c.conrelid = t.oid WHERE t.relname = 'school' AND c.contype = 'u'")
    assert [u["conname"] for u in unique] == ["school_school_id_key"]
    index = await fetch(clean_db, "SELECT indexdef FROM pg_indexes WHERE schemaname = "
                        "'dimensions' AND indexname = 'school_school_id_idx'")
    assert "(school_id)" in index[0]["indexdef"]
    rows = await fetch(clean_db, 'SELECT name, description, type, schema::text, storage::text, '
                       '"dimensionType"::text FROM spec."DimensionGrammar"')
    assert len(rows) == 1
    r = rows[0]
    assert (r["name"], r["description"], r["type"], r["dimensionType"]) == (
        "school", "", "dynamic", "INTERNAL")
    schema = json.loads(r["schema"])
    assert schema["title"] == "school" and schema["psql_schema"] == "dimensions"
    assert schema["properties"]["school_id"] == {"type": "string", "unique": True}
    assert schema["properties"]["latitude"] == {"type": "number", "unique": False}
    assert schema["indexes"] == [{"columns": [["school_id"]]}]
    # A JSON string, as cQube stores it; no primaryId (school has no PK, JSON.stringify drops it)
    assert json.loads(json.loads(r["storage"])) == {"indexes": ["name"], "retention": None,
                                                    "bucket_size": None}
    # The dimension's ingestion spec: every column present, the key not blank.
    resp = await pclient.get("/api/specs/dimension/school", headers=headers)
    spec = (await resp.json())["latest"]["cerberus"]
    assert spec["school_id"] == {"type": "string", "required": True, "empty": False}
    assert spec["latitude"] == {"type": "number", "required": True, "coerce": "number",
                                "nullable": True}
    # Sending it again changes nothing.
    status, body = await put_dimension(pclient, headers, "school", dim_text("school"))
    assert status == 200 and body["created"] is False and body["grammar"]["version"] == 1


async def test_pk_dimension_storage_names_it(pclient, headers, clean_db):
    status, _ = await put_dimension(pclient, headers, "academicyear", dim_text("academicyear"))
    assert status == 201
    r = (await fetch(clean_db, 'SELECT storage::text FROM spec."DimensionGrammar"'))[0]
    assert json.loads(r["storage"]) == ('{"indexes":["name"],"primaryId":"academicyear_id",'
                                        '"retention":null,"bucket_size":null}')
    unique = await fetch(clean_db, "SELECT conname FROM pg_constraint c JOIN pg_class t ON "
                         "c.conrelid = t.oid WHERE t.relname = 'academicyear' AND c.contype = 'u' "
                         "ORDER BY 1")
    assert [u["conname"] for u in unique] == ["academicyear_academicyear_id_key",
                                              "academicyear_academicyear_key"]


async def test_bad_grammar_is_400_naming_row_and_cell(pclient, headers, clean_db):
    status, body = await put_dimension(pclient, headers, "grade", "PK,Index\nstring,float\n"
                                       "grade_id,grade\n")
    assert status == 400
    assert body["error"]["code"] == "invalid_grammar"
    assert body["error"]["details"]["row"] == 2 and body["error"]["details"]["column"] == 2
    assert body["error"]["message"].startswith("row 2, column 2: unknown type 'float'")
    assert (await fetch(clean_db, "SELECT to_regclass('dimensions.grade') AS t"))[0]["t"] is None
    status, body = await put_dimension(pclient, headers, "grade", "PK,Index\nstring,string\n"
                                       "grade_id\n")
    assert status == 400 and body["error"]["details"]["row"] == 3
    # An event column whose dimension is not registered; a key that is not unique there.
    await put_dimension(pclient, headers, "district", dim_text("district"))
    ev = (",district,block,\n,district_id,block_id,\ndate,string,string,integer\n"
          "date,district_id,block_id,n\ntimeDimension,dimension,dimension,metric\n")
    status, body = await put_event(pclient, headers, "p", "e", ev)
    assert status == 400, body
    assert (body["error"]["details"]["row"], body["error"]["details"]["column"]) == (1, 3)
    assert "dimension 'block' is not registered" in body["error"]["message"]
    ev = (",district,\n,district_name,\ndate,string,integer\ndate,district_name,n\n"
          "timeDimension,dimension,metric\n")
    status, body = await put_event(pclient, headers, "p", "e", ev)
    assert status == 400
    assert (body["error"]["details"]["row"], body["error"]["details"]["column"]) == (2, 2)
    assert "not unique in dimension 'district'" in body["error"]["message"]
    # Nothing registered by any of these.
    assert await fetch(clean_db, "SELECT kind, name FROM processing_grammars ORDER BY 1") == [
        ("dimension", "district")]


async def test_event_grammar_is_the_event_spec(pclient, headers, clean_db):
    await put_dimension(pclient, headers, "district", dim_text("district"))
    ev = (",district,\n,district_id,\ndate,string,integer\ndate,district_id,students\n"
          "timeDimension,dimension,metric\n")
    status, body = await put_event(pclient, headers, "school-attendance", "students", ev)
    assert status == 201, body
    assert body["spec_created"] is True
    resp = await pclient.get("/api/specs/event/students", headers=headers)
    spec = (await resp.json())["latest"]["cerberus"]
    assert spec == {"date": {"type": "string", "required": True, "empty": False},
                    "district_id": {"type": "string", "required": True, "empty": False},
                    "students": {"type": "integer", "required": True, "coerce": "integer"}}
    resp = await pclient.get("/api/processing/grammars/events/school-attendance/students",
                             headers=headers)
    got = await resp.json()
    assert got["columns"][1] == {"dimension": "district", "dimension_key": "district_id",
                                 "type": "string", "name": "district_id", "role": "dimension"}
    assert got["latest"]["body"] == ev
    # A JSON spec that disagrees: 409 naming the columns, nothing registered.
    spec_body = {"program": "marks", "input": {"type": "object", "properties": {
        "date": {"type": "string"}, "district_id": {"type": "string"},
        "marks": {"type": "number"}, "extra": {"type": "string"}}}}
    assert (await pclient.post("/api/spec/event", json=spec_body, headers=headers)).status == 201
    ev2 = ev.replace("students", "marks")
    status, body = await put_event(pclient, headers, "school-attendance", "marks", ev2)
    assert status == 409 and body["error"]["code"] == "grammar_conflict"
    assert {c["column"] for c in body["error"]["details"]["columns"]} == {"marks", "extra"}
    assert "marks, extra" in body["error"]["message"]
    assert await fetch(clean_db, "SELECT name FROM processing_grammars WHERE kind = 'event'"
                       ) == [("students",)]


async def test_changed_dimension_grammar_409_then_migrate_keeps_rows(pclient, headers, clean_db):
    await put_dimension(pclient, headers, "grade", "PK,\nstring,string\ngrade_id,grade\n")
    conn_rows = await fetch(clean_db, "INSERT INTO dimensions.grade (grade_id, grade) VALUES "
                            "('01', 'One'), ('02', 'Two') RETURNING id")
    assert len(conn_rows) == 2
    changed = "PK,,\nstring,string,integer\ngrade_id,grade,level\n"
    status, body = await put_dimension(pclient, headers, "grade", changed)
    assert status == 409 and body["error"]["code"] == "grammar_conflict"
    assert body["error"]["details"]["changes"] == [
        {"change": "add_column", "column": "level", "type": "integer"}]
    status, body = await put_dimension(pclient, headers, "grade", changed, migrate="true")
    assert status == 201, body
    assert body["grammar"]["version"] == 2 and body["migrated"][0]["column"] == "level"
    rows = await fetch(clean_db, "SELECT grade_id, grade, level FROM dimensions.grade ORDER BY 1")
    assert [tuple(r) for r in rows] == [("01", "One", None), ("02", "Two", None)]
    resp = await pclient.get("/api/processing/grammars/dimensions/grade", headers=headers)
    got = await resp.json()
    assert [v["version"] for v in got["versions"]] == [2, 1]
    assert got["columns"][2] == {"name": "level", "type": "integer", "pk": False, "index": False}
    spec = (await (await pclient.get("/api/specs/dimension/grade", headers=headers)).json())
    assert spec["latest"]["version"] == 2 and "level" in spec["latest"]["cerberus"]


async def test_program_and_listing(pclient, headers, clean_db):
    resp = await pclient.put("/api/processing/programs/nas", headers=headers, json={
        "namespace": "nas", "whitelisted": ["district,lonas,subject,grade", "state,district"]})
    assert resp.status == 201, await resp.text()
    resp = await pclient.get("/api/processing/programs/nas", headers=headers)
    got = await resp.json()
    assert (got["namespace"], got["whitelisted"]) == ("nas", ["district,lonas,subject,grade",
                                                              "state,district"])
    resp = await pclient.put("/api/processing/programs/nas", headers=headers,
                             json={"namespace": "n a s"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_grammar"
    await put_dimension(pclient, headers, "district", dim_text("district"))
    listing = await (await pclient.get("/api/processing/grammars", headers=headers)).json()
    assert [d["name"] for d in listing["dimensions"]] == ["district"]
    assert listing["dimensions"][0]["rows"] == 0
    assert [p["name"] for p in listing["programs"]] == ["nas"]
    missing = await pclient.get("/api/processing/grammars/dimensions/nope", headers=headers)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "grammar_not_found"


async def test_scopes_and_media_type(pclient, headers):
    from conftest import READ_ONLY_CLIENT, basic
    resp = await pclient.get("/api/ingestion/generatejwt", headers=basic(*READ_ONLY_CLIENT,
                                                                         json=True))
    read_only = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    status, body = await put_dimension(pclient, read_only, "grade", "PK\nstring\ngrade_id\n")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    resp = await pclient.put("/api/processing/grammars/dimensions/grade", headers=headers,
                             json={"a": 1})
    assert resp.status == 415


async def test_disabled_processing_is_404(client, auth_headers):
    resp = await client.get("/api/processing/grammars", headers=auth_headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "processing_disabled"


async def test_answers_match_the_openapi_document(pclient, headers, clean_db):
    from openapi_helpers import Checker
    check = Checker()
    dim = "/api/processing/grammars/dimensions/{dim}"
    ev = "/api/processing/grammars/events/{program}/{event}"
    prog = "/api/processing/programs/{program}"
    text = "Index\nstring\ndistrict_id\n"
    csv_h = {**headers, "Content-Type": "text/csv"}
    await check(await pclient.put(dim.format(dim="district"), data=text, headers=csv_h),
                "put", dim)
    await check(await pclient.put(dim.format(dim="district"), data=text, headers=csv_h),
                "put", dim)
    await check(await pclient.put(dim.format(dim="x"), data="PK\nfloat\nx\n", headers=csv_h),
                "put", dim)
    await check(await pclient.put(dim.format(dim="district"), data="Index,\nstring,string\n"
                                  "district_id,name\n", headers=csv_h), "put", dim)  # 409
    await check(await pclient.put(dim.format(dim="x"), json={}, headers=headers), "put", dim)
    await check(await pclient.get(dim.format(dim="district"), headers=headers), "get", dim)
    await check(await pclient.get(dim.format(dim="nope"), headers=headers), "get", dim)
    event = ",district,\n,district_id,\ndate,string,integer\ndate,district_id,n\n" \
            "timeDimension,dimension,metric\n"
    await check(await pclient.put(ev.format(program="p", event="e"), data=event,
                                  headers=csv_h), "put", ev)
    await check(await pclient.get(ev.format(program="p", event="e"), headers=headers),
                "get", ev)
    await check(await pclient.put(prog.format(program="p"), json={"namespace": "p"},
                                  headers=headers), "put", prog)
    await check(await pclient.put(prog.format(program="p"), json=[1], headers=headers),
                "put", prog)
    await check(await pclient.get(prog.format(program="p"), headers=headers), "get", prog)
    await check(await pclient.get("/api/processing/grammars", headers=headers), "get",
                "/api/processing/grammars")
    refs = "/api/processing/uploads/{upload_id}/references"
    await check(await pclient.get(refs.format(upload_id="nope"), headers=headers), "get", refs)
    assert {s for _, _, s in check.seen} >= {"200", "201", "400", "404", "409", "415"}
