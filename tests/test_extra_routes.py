"""cQube's routes that we lacked: JSON rows (``event``/``dimension``/``dataset``), ``validate``
and ``getRawData`` with its signed local links. Native profile here (they exist in both); the
cqube profile's shapes of their errors are in test_cqube_profile.py. Real PostgreSQL, local
storage and a real SeaweedFS S3 server where storage matters."""

from __future__ import annotations

import io
import json
import time

import aiohttp
import pytest

from conftest import RAWDATA_CLIENT, basic, make_settings
from ingest_helpers import SPEC, build_zip, form, landed, read_object

from ingest_server.rawdata import sign
from ingest_server.web.appkeys import STORAGE

ROWS = [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 4, "remarks": "ok"},
        {"date": "2024-01-01", "school_id": "S2", "teachers_present": "x"},
        {"date": "2024-01-02", "school_id": "S3", "teachers_present": 7.5, "remarks": None}]
DIMENSION = {"program": "district", "input": {"type": "object", "properties": {
    "district_id": {"type": "string", "shouldNotNull": True},
    "district_name": {"type": "string", "shouldNotNull": True}},
    "required": ["district_id", "district_name"]}}


@pytest.fixture(params=["local", "s3"])
def settings(request, tmp_path, clean_db):
    from conftest import s3_settings

    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    return make_settings(tmp_path, clean_db, storage=storage, limits={"max_json_bytes": 4096})


async def spec(client, headers, body=SPEC, kind="event"):
    resp = await client.post(f"/api/spec/{kind}", json=body, headers=headers)
    assert resp.status in (200, 201)


# -- JSON rows -----------------------------------------------------------------------------------

async def test_event_rows_land_like_a_csv(client, auth_headers):
    await spec(client, auth_headers)
    resp = await client.post("/api/ingestion/event", headers=auth_headers, json={
        "event_name": "teacherspresent", "program_name": "school-attendance", "event": ROWS})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["message"], body["valid_record_count"], body["invalid_record_count"]) == (
        "Event added successfully", 2, 1)
    assert body["objects"]["valid"].startswith("process_input/school-attendance/")
    assert await read_object(client, body["objects"]["valid"]) == [
        ["date", "school_id", "teachers_present", "remarks"],
        ["2024-01-01", "S1", "4", "ok"],
        ["2024-01-02", "S3", "7.5", ""]]
    errors = await read_object(client, body["objects"]["errors"])
    assert errors[0][:4] == ["date", "school_id", "teachers_present", "remarks"]
    assert errors[1][:4] == ["2024-01-01", "S2", "x", ""]
    assert "teachers_present" in ",".join(errors[1][4:])
    # the same upload record as a CSV: found by its id and by file-status
    record = await (await client.get(f"/api/ingestion/uploads/{body['upload_id']}",
                                     headers=auth_headers)).json()
    assert (record["filename"], record["total_rows"]) == ("teacherspresent.json", 3)


async def test_dimension_and_dataset_rows(client, auth_headers):
    await spec(client, auth_headers, DIMENSION, "dimension")
    await spec(client, auth_headers, dict(SPEC, program="attendance_ds"), "dataset")
    resp = await client.post("/api/ingestion/dimension", headers=auth_headers, json={
        "dimension_name": "district", "dimension": [
            {"district_id": "D1", "district_name": "North"},
            {"district_id": "D2", "district_name": ""}]})
    body = await resp.json()
    assert (resp.status, body["valid_record_count"], body["invalid_record_count"]) == (200, 1, 1)
    assert body["objects"]["valid"].startswith("process_input/dimensions/")
    assert await read_object(client, body["objects"]["valid"]) == [
        ["district_id", "district_name"], ["D1", "North"]]
    resp = await client.post("/api/ingestion/dataset", headers=auth_headers, json={
        "dataset_name": "attendance_ds", "program_name": "sa", "dataset": ROWS[:1]})
    body = await resp.json()
    assert (resp.status, body["valid_record_count"]) == (200, 1)
    assert body["objects"]["valid"].startswith("process_input/datasets/")


async def test_json_rows_refusals(client, auth_headers):
    await spec(client, auth_headers)
    for payload, code in (({"event": ROWS}, "missing_field"),
                          ({"event_name": "teacherspresent", "event": []}, "invalid_field"),
                          ({"event_name": "teacherspresent", "event": [1]}, "invalid_field"),
                          ({"event_name": "../x", "event": ROWS}, "invalid_name")):
        resp = await client.post("/api/ingestion/event", headers=auth_headers, json=payload)
        assert resp.status == 400, payload
        assert (await resp.json())["error"]["code"] == code
    big = {"event_name": "teacherspresent", "event": ROWS * 100}
    resp = await client.post("/api/ingestion/event", headers=auth_headers, json=big)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "body_too_large"
    resp = await client.post("/api/ingestion/event", headers=auth_headers, json={
        "event_name": "nothere", "event": ROWS})
    assert resp.status == 404
    assert await landed(client) == []


async def test_json_rows_need_a_token(client):
    resp = await client.post("/api/ingestion/event", json={"event_name": "x", "event": ROWS})
    assert resp.status == 401


# -- validate ------------------------------------------------------------------------------------

def validate_form(type_, grammar=None, data=None, *, data_first=False) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("type", type_)
    parts = []
    if grammar is not None:
        parts.append(("grammar", json.dumps(grammar).encode(), "spec.json", "application/json"))
    if data is not None:
        parts.append(("data", data, "data.csv", "text/csv"))
    for name, content, filename, ctype in (reversed(parts) if data_first else parts):
        f.add_field(name, io.BytesIO(content), filename=filename, content_type=ctype)
    return f


@pytest.mark.parametrize("data_first", [False, True])
async def test_validate_data_lists_row_errors_and_writes_nothing(client, auth_headers,
                                                                 data_first):
    data = b"date,school_id,teachers_present\n2024-01-01,S1,4\n2024-01-01,,x\n"
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form("event-data", SPEC, data, data_first=data_first))
    assert resp.status == 201
    body = await resp.json()
    assert {(e["line"], e["column"]) for e in body["errors"]} == {
        (3, "school_id"), (3, "teachers_present")}
    assert (body["valid_rows"], body["invalid_rows"]) == (1, 1)
    assert await landed(client) == []
    uploads = await (await client.get("/api/ingestion/uploads", headers=auth_headers)).json()
    assert uploads["uploads"] == []


async def test_validate_grammar_and_file_level_errors(client, auth_headers):
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form("dimension-grammar", DIMENSION))
    assert (resp.status, await resp.json()) == (201, {"errors": []})
    bad = {"program": "p", "input": {"type": "object", "properties": {"a": {"type": "odd"}}}}
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form("event-grammar", bad))
    errors = (await resp.json())["errors"]
    assert resp.status == 201 and errors[0]["code"] == "invalid_spec"
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form("event-data", SPEC, b"date\n2024-01-01\n"))
    errors = (await resp.json())["errors"]
    assert resp.status == 201 and errors[0]["code"] == "missing_column"
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form("nonsense", SPEC))
    assert resp.status == 400
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form("event-data", SPEC))
    assert resp.status == 400 and (await resp.json())["error"]["details"]["field"] == "data"


async def test_validate_needs_a_token_in_native(client):
    resp = await client.post("/api/ingestion/validate", data=validate_form("event-grammar", SPEC))
    assert resp.status == 401


# -- getRawData ----------------------------------------------------------------------------------

async def test_get_raw_data_links_download_todays_emission_files(client, auth_headers):
    await spec(client, auth_headers)
    csv_bytes = b"date,school_id,teachers_present\n2024-01-01,S1,4\n"
    resp = await client.post("/api/ingestion/national_programs", headers=auth_headers,
                             data=form(build_zip([("teacherspresent.csv", csv_bytes)]),
                                       fields={}, filename="teacherspresent.zip",
                                       content_type="application/zip"))
    key = (await resp.json())["members"][0]["objects"]["valid"]
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*RAWDATA_CLIENT, json=True))
    puller = {"Authorization": f"Bearer {(await resp.json())['token']}"}  # the rawdata grant
    resp = await client.post("/api/ingestion/getRawData", headers=puller,
                             json={"program_names": ["teacherspresent", "other"]})
    assert resp.status == 200
    body = await resp.json()
    assert body["code"] == 200
    assert [d["program_name"] for d in body["data"]] == ["teacherspresent", "other"]
    assert body["data"][1]["urls"] == []
    [url] = body["data"][0]["urls"]


# -- auth.open_spec_api and the profile keys -----------------------------------------------------

async def test_open_spec_api_lets_spec_writes_and_validate_through(aiohttp_client, tmp_path,
                                                                   clean_db, caplog):
    from ingest_server.web.app import create_app

    app = create_app(make_settings(tmp_path, clean_db, auth={"open_spec_api": True}))
    assert "auth.open_spec_api is true" in caplog.text
    c = await aiohttp_client(app)
    resp = await c.post("/api/spec/event", json=SPEC)  # native profile: native answer
    body = await resp.json()
    assert resp.status == 201 and body["spec"]["created_by"] == "anonymous"
    resp = await c.post("/api/ingestion/validate", data=validate_form("event-grammar", SPEC))
    assert resp.status == 201
    resp = await c.put("/api/specs/event/x", json={"cerberus": {"a": {"type": "string"}}})
    assert resp.status == 201  # the same scope, the same rule
    for method, path in (("GET", "/api/specs"), ("POST", "/api/ingestion/new_programs"),
                         ("POST", "/api/ingestion/event")):
        assert (await c.request(method, path)).status == 401, path  # other scopes keep the token
    resp = await c.post("/api/spec/event", json=SPEC, headers={"Authorization": "Bearer bad"})
    assert resp.status == 401  # a token that is sent is still checked


async def test_spec_writes_need_a_token_by_default(client):
    assert (await client.post("/api/spec/event", json=SPEC)).status == 401


def test_profile_keys_from_the_environment():
    from ingest_server.config import load_settings
    from ingest_server.errors import ConfigError

    s = load_settings(None, env={"INGEST_COMPAT_PROFILE": "cqube",
                                 "INGEST_AUTH_OPEN_SPEC_API": "true",
                                 "INGEST_LIMITS_MAX_JSON_BYTES": "2048"})
    assert (s.compat.profile, s.auth.open_spec_api, s.limits.max_json_bytes) == (
        "cqube", True, 2048)
    defaults = load_settings(None, env={})
    assert (defaults.compat.profile, defaults.auth.open_spec_api) == ("native", False)
    with pytest.raises(ConfigError, match="compat.profile"):
        load_settings(None, env={"INGEST_COMPAT_PROFILE": "nestjs"})
