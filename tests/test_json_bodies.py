"""JSON bodies (JSON rows, specs, /validate): reserved programme names, lone surrogates, escapes,
hostile grammar JSON, rows read one at a time refusing what JSON refuses, members in any order,
and the body limit in the OpenAPI document."""

from __future__ import annotations

import io
import json

import aiohttp
import pytest

from ingest_helpers import SPEC, landed, register, statuses
from ingest_server.web.appkeys import SETTINGS


ROWS = [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 4}]


JSON = {"Content-Type": "application/json"}


def rows_body(**fields) -> dict:
    return {"event_name": "teacherspresent", "event": ROWS, **fields}


@pytest.mark.parametrize("program", ["dimensions", "datasets", "Dimensions", "DATASETS"])
async def test_json_rows_refuse_reserved_program_names(client, auth_headers, clean_db, program):
    await register(client, auth_headers)
    resp = await client.post("/api/ingestion/event", headers=auth_headers,
                             json=rows_body(program_name=program))
    assert resp.status == 400, await resp.text()  # was: 200, event rows in the shared folder
    error = (await resp.json())["error"]
    assert (error["code"], error["details"]["field"]) == ("reserved_name", "program_name")
    assert await landed(client) == [] and await statuses(clean_db) == []


LONE = [r'"\ud800"', r'"x\udfffy"', r'"\ud800\u0041"']


@pytest.mark.parametrize("lone", LONE)
async def test_a_lone_surrogate_in_json_rows_is_400(client, auth_headers, clean_db, lone):
    await register(client, auth_headers)
    body = ('{"event_name": "teacherspresent", "event": [{"date": "2024-01-01", '
            f'"school_id": {lone}, "teachers_present": 4}}]}}')
    resp = await client.post("/api/ingestion/event", data=body.encode(),
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()  # was: 500
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_json" and "surrogate" in error["message"]
    assert await landed(client) == [] and await statuses(clean_db) == []


@pytest.mark.parametrize("lone", LONE)
async def test_a_lone_surrogate_in_a_spec_is_400(client, auth_headers, clean_db, lone):
    cqube = ('{"program": "x", "input": {"type": "object", "properties": {"a": '
             f'{{"type": "string", "description": {lone}}}}}}}}}')
    resp = await client.post("/api/spec/event", data=cqube.encode(),
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()  # was: 500
    assert (await resp.json())["error"]["code"] == "invalid_json"
    cerberus = f'{{"cerberus": {{"a": {{"type": "string", "allowed": [{lone}]}}}}}}'
    resp = await client.put("/api/specs/event/x", data=cerberus.encode(),
                            headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()  # was: 500
    assert (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.get("/api/specs", headers=auth_headers)
    assert (await resp.json())["specs"] == []


async def test_escaped_backslashes_and_surrogate_pairs_are_fine(client, auth_headers):
    """Only a lone surrogate is refused: ``\\\\ud800`` is a backslash and text, and a pair is
    one character."""
    await register(client, auth_headers)
    body = ('{"event_name": "teacherspresent", "event": [{"date": "2024-01-01", '
            r'"school_id": "\\ud800 \ud83d\ude00", "teachers_present": 4}]}')
    resp = await client.post("/api/ingestion/event", data=body.encode(),
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["valid_record_count"] == 1
    from ingest_helpers import read_object
    rows = await read_object(client, (await resp.json())["objects"]["valid"])
    assert rows[1][1] == "\\ud800 \U0001F600"


def validate_form(grammar: bytes) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("type", "event-grammar")
    f.add_field("grammar", io.BytesIO(grammar), filename="spec.json",
                content_type="application/json")
    return f


@pytest.mark.parametrize("grammar", [
    b'{"program": "x", "input": ' + b'{"a": ' * 100_000 + b'1' + b'}' * 100_001,
    b'[' * 100_000 + b']' * 100_000,
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "string", '
    b'"description": "\\ud800"}}}}',
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "number", '
    b'"maximum": NaN}}}}',
], ids=["nested-object", "nested-array", "lone-surrogate", "nan"])
async def test_validate_refuses_hostile_grammar_json_with_400(client, auth_headers, grammar):
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form(grammar))
    assert resp.status == 400, await resp.text()  # was: 500 (RecursionError, UnicodeEncodeError)
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_spec" and "not valid JSON" in error["message"]


async def test_validate_still_checks_a_good_grammar(client, auth_headers):
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form(json.dumps(SPEC).encode()))
    assert resp.status == 201, await resp.text()
    assert await resp.json() == {"errors": []}


@pytest.mark.parametrize("payload, code", [
    (b'[{"event_name": "teacherspresent"}]', "invalid_body"),
    (b'{"event_name": "teacherspresent", "event": [' + b'[' * 100 + b']' * 100 + b']}',
     "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": NaN}]}', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1e400}]}', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}] x', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1},]}', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}]} []', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": {"a": 1}}', "invalid_field"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}], "event": [{"a": 2}]}',
     "invalid_body"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}, 2]}', "invalid_field"),
    (b'{"event_name": 5, "event": [{"a": 1}]}', "missing_field"),
    (b'{"event": [], "event_name": "teacherspresent"}', "invalid_field"),
    (b'{"event_name": "teacherspresent"}', "missing_field"),
    (b'\xff{}', "invalid_json"),
], ids=["array", "deep", "nan", "inf", "garbage", "trailing-comma", "two-documents",
        "rows-object", "rows-twice", "row-not-object", "name-not-string", "no-rows",
        "rows-missing", "not-utf8"])
async def test_json_row_bodies_read_a_row_at_a_time_refuse_what_json_refuses(
        client, auth_headers, clean_db, payload, code):
    await register(client, auth_headers)
    resp = await client.post("/api/ingestion/event", data=payload,
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == code
    assert await landed(client) == [] and await statuses(clean_db) == []
    assert list((client.app[SETTINGS].path(client.app[SETTINGS].server.state_dir)
                 / "spool").iterdir()) == []


async def test_json_rows_members_in_any_order_and_nested_values(client, auth_headers):
    await register(client, auth_headers)
    payload = (b'{"event": [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 4, '
               b'"extra": {"k": [1, 2.5, null, true]}}, {"school_id": "S2", "date": '
               b'"2024-01-02", "teachers_present": 1.0}] , "program_name": "p", '
               b'"event_name": "teacherspresent"}')
    resp = await client.post("/api/ingestion/event", data=payload,
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 200, await resp.text()
    from ingest_helpers import read_object
    assert await read_object(client, (await resp.json())["objects"]["valid"]) == [
        ["date", "school_id", "teachers_present", "extra"],
        ["2024-01-01", "S1", "4", '{"k": [1, 2.5, null, true]}'],
        ["2024-01-02", "S2", "1.0", ""]]


async def test_the_json_body_limit_is_documented_in_openapi(client):
    document = await (await client.get("/api/openapi.json")).json()
    for kind in ("event", "dimension", "dataset"):
        op = document["paths"][f"/api/ingestion/{kind}"]["post"]
        assert "16 MiB" in op["requestBody"]["description"]  # was: no description
        assert "limits.max_json_bytes" in op["requestBody"]["description"]
        assert "413" in op["responses"]
