"""The cqube profile driven as cQube's clients drive it, row by row from CQUBE.md §1.

A real app (production factory) on the real PostgreSQL, with ``compat.profile = "cqube"`` and
``auth.open_spec_api = true`` (as ``INGEST_COMPAT_PROFILE=cqube INGEST_AUTH_OPEN_SPEC_API=true``):
the token is fetched and sent as cQube's clients do (the bare body, ``Bearer <body>``), specs are
posted without a token, and every answer is compared with cQube's body.
"""

from __future__ import annotations

import io
import json

import aiohttp
import pytest

from clients_helpers import ADMIN, DATA, OTHER, app, settings_for, zipped
from clients_helpers import bearer as bearer_of
from conftest import TEST_CLIENT, basic, make_settings
from ingest_helpers import SPEC, build_zip, form, landed, read_object, register, upload

DIMENSION = {"program": "district", "input": {"type": "object", "properties": {
    "district_id": {"type": "string", "shouldNotNull": True},
    "district_name": {"type": "string", "shouldNotNull": True}},
    "required": ["district_id", "district_name"]}}
GOOD = (b"date,school_id,teachers_present,remarks\n"
        b"2024-01-01,S1,4,ok\n2024-01-01,S2,x,bad number\n2024-01-02,S3,7,\n")
FORBIDDEN = {"statusCode": 403, "message": "Forbidden resource", "error": "Forbidden"}


def ajv_required(field: str) -> dict:
    return {"instancePath": "", "schemaPath": "#/required", "keyword": "required",
            "params": {"missingProperty": field},
            "message": f"must have required property '{field}'"}


@pytest.fixture(params=["local", "s3"])
def settings(request, tmp_path, clean_db):
    from conftest import s3_settings

    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    return make_settings(tmp_path, clean_db, storage=storage, compat={"profile": "cqube"},
                         auth={"open_spec_api": True})


@pytest.fixture
async def bearer(client):
    """The token as cQube's clients take it: the bare body of generatejwt."""
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT))
    assert resp.status == 200 and resp.content_type == "text/plain"
    body = await resp.text()
    assert body.count(".") == 2 and '"' not in body and not body.startswith("{")
    return {"Authorization": f"Bearer {body}"}


async def post_spec(client, body, kind="event"):
    resp = await client.post(f"/api/spec/{kind}", json=body)  # no auth at all, as in cQube
    return resp.status, await resp.json()


async def file_status(client, headers, filename, kind="event", name="teacherspresent"):
    resp = await client.get("/api/ingestion/file-status", headers=headers, params={
        "filename": filename, "ingestion_type": kind, "ingestion_name": name})
    return resp.status, await resp.json()


# -- token and auth ------------------------------------------------------------------------------

async def test_token_is_the_bare_jwt_and_works_as_bearer(client, bearer):
    resp = await client.get("/api/specs", headers=bearer)
    assert resp.status == 200


async def test_token_as_json_on_request(client):
    resp = await client.get("/api/ingestion/generatejwt",
                            headers=basic(*TEST_CLIENT, json=True))
    body = await resp.json()
    assert set(body) >= {"token", "token_type", "expires_in"}


async def test_guarded_route_without_token_is_403_forbidden_resource(client):
    for method, path in (("POST", "/api/ingestion/new_programs"),
                         ("POST", "/api/ingestion/national_programs"),
                         ("GET", "/api/ingestion/file-status"),
                         ("POST", "/api/ingestion/getRawData"),
                         ("POST", "/api/ingestion/event")):
        resp = await client.request(method, path)
        assert resp.status == 403, path
        assert await resp.json() == FORBIDDEN


async def test_bad_signature_is_401(client, bearer):
    token = bearer["Authorization"][:-4] + "AAAA"
    resp = await client.post("/api/ingestion/new_programs", headers={"Authorization": token})
    assert resp.status == 401
    body = await resp.json()
    assert body["statusCode"] == 401 and body["message"] == "Unauthorized"


# -- specs ---------------------------------------------------------------------------------------

async def test_spec_messages_and_versioning(client):
    assert await post_spec(client, SPEC) == (200, {
        "message": "Event grammar created successfully", "program": "teacherspresent",
        "version": 1})
    assert await post_spec(client, SPEC) == (400, {"message": "Program already exists"})
    changed = {**SPEC, "input": {**SPEC["input"], "required": ["date", "school_id"]}}
    status, body = await post_spec(client, changed)
    assert (status, body["message"], body["version"]) == (
        200, "Event grammar created successfully", 2)
    assert await post_spec(client, DIMENSION, "dimension") == (200, {
        "message": "Dimension spec created successfully", "dimension_name": "district",
        "version": 1})
    assert await post_spec(client, DIMENSION, "dimension") == (
        400, {"message": "Dimension spec already exists"})


async def test_spec_failing_its_schema_is_ajv_400(client):
    status, body = await post_spec(client, {"input": SPEC["input"]})
    assert status == 400
    assert body == {"message": [ajv_required("program")]}
    status, body = await post_spec(client, {"program": "p", "input": {
        "type": "object", "properties": {"a": {"type": "complex"}}}})
    assert status == 400 and isinstance(body["message"], list)
    err = body["message"][0]
    assert set(err) == {"instancePath", "schemaPath", "keyword", "params", "message"}
    assert err["instancePath"] == "/input/properties/a" and err["keyword"] == "type"


async def test_spec_with_a_token_still_works(client, bearer):
    resp = await client.post("/api/spec/event", json=SPEC, headers=bearer)
    assert resp.status == 200


# -- new_programs --------------------------------------------------------------------------------

async def test_accepted_upload_is_file_being_processed_then_uploaded(client, bearer):
    await post_spec(client, SPEC)
    resp = await client.post("/api/ingestion/new_programs", data=form(GOOD), headers=bearer)
    assert resp.status == 200
    body = await resp.json()
    assert body["message"] == "File is being processed"
    assert (body["valid_rows"], body["invalid_rows"], body["file_status"]) == (2, 1, "Uploaded")
    rows = await read_object(client, body["objects"]["valid"])
    assert rows == [["date", "school_id", "teachers_present", "remarks"],
                    ["2024-01-01", "S1", "4", "ok"], ["2024-01-02", "S3", "7", ""]]
    status, fs = await file_status(client, bearer, "data.csv")
    assert status == 200
    r = fs["response"]
    assert set(r) == {"pid", "file_name", "file_status", "created_at", "total_data_count",
                      "processed_data_count", "error_data_count"}
    assert (r["pid"], r["file_name"], r["file_status"]) == (body["pid"], "data.csv", "Uploaded")
    assert (r["total_data_count"], r["processed_data_count"], r["error_data_count"]) == (3, 2, 1)


async def test_no_spec_is_200_then_error_no_event_found(client, bearer):
    fields = {"ingestion_type": "event", "ingestion_name": "nothere",
              "program_name": "school-attendance"}
    resp = await client.post("/api/ingestion/new_programs", data=form(GOOD, fields=fields),
                             headers=bearer)
    assert resp.status == 200
    body = await resp.json()
    assert body["message"] == "File is being processed"
    assert body["file_status"] == "Error ->No event found"
    assert body["error"]["code"] == "spec_not_found"
    assert await landed(client) == []
    status, fs = await file_status(client, bearer, "data.csv", name="nothere")
    assert (status, fs["response"]["file_status"]) == (200, "Error ->No event found")
    assert fs["response"]["pid"] == body["pid"]


async def test_an_upload_refused_at_the_door_is_recorded_like_any_other(client, bearer):
    """No spec: the upload is recorded through the upload lifecycle (its outcome counted in the
    metrics, its bytes those of the file), not by rows written beside it."""
    from ingest_server import metrics

    counted = metrics.UPLOADS.labels("new_programs", "event", "unknownspec", "rejected")
    before = counted._value.get()
    fields = {"ingestion_type": "event", "ingestion_name": "unknownspec",
              "program_name": "school-attendance"}
    resp = await client.post("/api/ingestion/new_programs", data=form(GOOD, fields=fields),
                             headers=bearer)
    body = await resp.json()
    assert (resp.status, body["status"], body["error"]["code"]) == \
        (200, "rejected", "spec_not_found")
    assert body["bytes"] == len(GOOD)
    assert counted._value.get() == before + 1


async def test_no_dimension_spec_is_error_no_dimension_found(client, bearer):
    fields = {"ingestion_type": "dimension", "ingestion_name": "block"}
    resp = await client.post("/api/ingestion/new_programs", headers=bearer,
                             data=form(b"block_id\nB1\n", fields=fields, file_first=True))
    assert resp.status == 200
    assert (await resp.json())["file_status"] == "Error ->No dimension found"
    status, fs = await file_status(client, bearer, "data.csv", "dimension", "block")
    assert fs["response"]["file_status"] == "Error ->No dimension found"


async def test_missing_column_is_200_then_error_with_reason(client, bearer):
    await post_spec(client, SPEC)
    resp = await client.post("/api/ingestion/new_programs", headers=bearer,
                             data=form(b"date,school_id\n2024-01-01,S1\n"))
    assert resp.status == 200
    body = await resp.json()
    assert body["message"] == "File is being processed"
    assert body["error"]["code"] == "missing_column"
    assert body["file_status"].startswith("Error ->") and "teachers_present" in body["file_status"]
    assert await landed(client) == []
    status, fs = await file_status(client, bearer, "data.csv")
    assert fs["response"]["file_status"] == body["file_status"]


async def test_every_row_bad_is_200_then_error(client, bearer):
    await post_spec(client, SPEC)
    resp = await client.post("/api/ingestion/new_programs", headers=bearer,
                             data=form(b"date,school_id,teachers_present\n,S1,x\n,S2,y\n"))
    assert resp.status == 200
    body = await resp.json()
    assert (body["message"], body["valid_rows"], body["invalid_rows"]) == (
        "File is being processed", 0, 2)
    status, fs = await file_status(client, bearer, "data.csv")
    assert fs["response"]["file_status"].startswith("Error ->All 2 records are invalid")
    assert (fs["response"]["processed_data_count"], fs["response"]["error_data_count"]) == (0, 2)


@pytest.mark.parametrize("missing", ["ingestion_type", "ingestion_name", "program_name"])
async def test_missing_form_field_is_ajv_400(client, bearer, missing):
    await post_spec(client, SPEC)
    fields = {"ingestion_type": "event", "ingestion_name": "teacherspresent",
              "program_name": "school-attendance"}
    del fields[missing]
    resp = await client.post("/api/ingestion/new_programs", headers=bearer,
                             data=form(GOOD, fields=fields))
    assert resp.status == 400
    body = await resp.json()
    assert body == {"message": [ajv_required(missing)]}
    assert body["message"][0]["message"] == f"must have required property '{missing}'"


async def test_no_file_part_is_file_is_required(client, bearer):
    data = aiohttp.FormData({"ingestion_type": "event", "ingestion_name": "teacherspresent",
                             "program_name": "school-attendance"}, default_to_multipart=True)
    resp = await client.post("/api/ingestion/new_programs", headers=bearer, data=data)
    assert resp.status == 400
    assert await resp.json() == {"message": "File is required"}


@pytest.mark.parametrize("path,service_path", [
    ("/api/ingestion/new_programs", "/new_programs"),
    ("/api/ingestion/national_programs", "/national_programs"),
    ("/api/ingestion/getRawData", "/getRawData"),
    ("/api/spec/event", "/event"),
])
async def test_get_on_a_post_route_is_cannot_get(client, bearer, path, service_path):
    resp = await client.get(path, headers=bearer)
    assert resp.status == 404
    assert await resp.json() == {"statusCode": 404, "message": f"Cannot GET {service_path}",
                                 "error": "Not Found"}


# -- national_programs ---------------------------------------------------------------------------

async def test_national_zip_processing_and_file_status_by_zip_stem(client, bearer):
    await post_spec(client, SPEC)
    archive = build_zip([("teacherspresent.csv", GOOD)])
    resp = await client.post("/api/ingestion/national_programs", headers=bearer, data=form(
        archive, fields={}, filename="teacherspresent.zip", content_type="application/zip"))
    assert resp.status == 200
    body = await resp.json()
    assert body["message"] == "File is being processed"
    valid = body["members"][0]["objects"]["valid"]
    assert valid.startswith("emission/")
    assert (await read_object(client, valid))[1] == ["2024-01-01", "S1", "4", "ok"]
    status, fs = await file_status(client, bearer, "teacherspresent.zip", "event",
                                   "teacherspresent")
    assert status == 200
    r = fs["response"]
    assert (r["file_name"], r["file_status"], r["total_data_count"]) == (
        "teacherspresent.zip", "Uploaded", 3)


async def test_national_zip_without_spec_is_schema_doesnt_exist(client, bearer):
    archive = build_zip([("unknownprog.csv", GOOD)])
    resp = await client.post("/api/ingestion/national_programs", headers=bearer, data=form(
        archive, fields={}, filename="unknownprog.zip", content_type="application/zip"))
    assert resp.status == 400
    assert await resp.json() == {"message": "Schema doesn't exists for this program"}
    assert await landed(client) == []


# -- file-status ---------------------------------------------------------------------------------

async def test_file_status_nothing_found_is_no_records_found(client, bearer):
    assert await file_status(client, bearer, "never.csv") == (
        400, {"message": "No records found"})


async def test_file_status_needs_all_three_fields(client, bearer):
    resp = await client.get("/api/ingestion/file-status", headers=bearer,
                            params={"filename": "x.csv"})
    assert resp.status == 400
    assert await resp.json() == {"message": [ajv_required("ingestion_type"),
                                             ajv_required("ingestion_name")]}


# -- the routes cQube's clients call that we lacked ----------------------------------------------

async def test_validate_needs_no_token_with_open_spec_api(client):
    data = aiohttp.FormData()
    data.add_field("type", "event-data")
    data.add_field("grammar", io.BytesIO(json.dumps(SPEC).encode()), filename="g.json")
    data.add_field("data", io.BytesIO(GOOD), filename="d.csv")
    resp = await client.post("/api/ingestion/validate", data=data)
    assert resp.status == 201
    errors = (await resp.json())["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [(3, "teachers_present")]
    assert await landed(client) == []


async def test_json_rows_answer_and_ajv_400(client, bearer):
    await post_spec(client, SPEC)
    resp = await client.post("/api/ingestion/event", headers=bearer, json={
        "event_name": "teacherspresent", "program_name": "school-attendance",
        "event": [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 3}]})
    body = await resp.json()
    assert (resp.status, body["message"], body["valid_record_count"],
            body["invalid_record_count"]) == (200, "Event added successfully", 1, 0)
    assert await read_object(client, body["objects"]["valid"]) == [
        ["date", "school_id", "teachers_present"], ["2024-01-01", "S1", "3"]]
    resp = await client.post("/api/ingestion/event", headers=bearer, json={"event": []})
    assert resp.status == 400
    assert await resp.json() == {"message": [ajv_required("event_name")]}


async def test_get_raw_data_in_cqube_profile(client, bearer):
    resp = await client.post("/api/ingestion/getRawData", headers=bearer,
                             json={"program_names": ["teacherspresent"]})
    assert (resp.status, await resp.json()) == (
        200, {"code": 200, "data": [{"program_name": "teacherspresent", "urls": []}]})


async def test_our_own_routes_keep_working(client, bearer):
    resp = await client.get("/api/ingestion/uploads", headers=bearer)
    assert resp.status == 200 and "uploads" in await resp.json()


async def test_cqube_file_status_answers_another_clients_upload_as_unknown(
        aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db, compat={"profile": "cqube"}))
    mine, theirs, admin = (await bearer_of(c, TEST_CLIENT), await bearer_of(c, OTHER),
                           await bearer_of(c, ADMIN))
    await register(c, mine)
    await upload(c, mine, DATA, filename="mine.csv")
    await upload(c, mine, zipped("teacherspresent.csv", DATA), fields={},
                 path="/api/ingestion/national_programs", filename="teacherspresent.zip",
                 content_type="application/zip")
    for name, kind in (("mine.csv", "teacherspresent"), ("teacherspresent.zip",
                                                         "teacherspresent")):
        q = {"filename": name, "ingestion_type": "event", "ingestion_name": kind}
        resp = await c.get("/api/ingestion/file-status", headers=theirs, params=q)
        assert (resp.status, await resp.json()) == (400, {"message": "No records found"})
        resp = await c.get("/api/ingestion/file-status", headers=mine, params=q)
        assert resp.status == 200 and (await resp.json())["upload"]["client"] == TEST_CLIENT[0]
        resp = await c.get("/api/ingestion/file-status", headers=admin, params=q)
        assert resp.status == 200
