"""Issue 27: in the cqube profile a method a cQube route does not have answers NestJS's 404
before any token check, as cQube routes a request before its guard runs; ``POST
/api/spec/schedule`` answers as cQube's spec service does for an invalid body, and 501
``not_supported`` for a valid one. The native profile keeps its own answers. Real app on the
real PostgreSQL."""

from __future__ import annotations

import pytest

from conftest import TEST_CLIENT, basic, make_settings

FORBIDDEN = {"statusCode": 403, "message": "Forbidden resource", "error": "Forbidden"}
# (method, path, the path as cQube's service sees it)
WRONG_METHODS = [
    ("GET", "/api/ingestion/new_programs", "/new_programs"),
    ("GET", "/api/ingestion/national_programs", "/national_programs"),
    ("GET", "/api/spec/event", "/event"),
    ("GET", "/api/spec/dimension", "/dimension"),
    ("GET", "/api/spec/schedule", "/schedule"),
    ("PUT", "/api/ingestion/new_programs", "/new_programs"),
    ("DELETE", "/api/spec/event", "/event"),
    ("POST", "/api/ingestion/file-status", "/file-status"),
    ("GET", "/api/ingestion/event", "/event"),
]


async def _client(aiohttp_client, tmp_path, dsn, *, profile, open_spec=False, processing=False):
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, dsn, compat={"profile": profile},
                             auth={"open_spec_api": open_spec},
                             processing={"enabled": processing})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    return client, {"Authorization": f"Bearer {(await resp.json())['token']}"}


@pytest.fixture
async def cqube(aiohttp_client, tmp_path, clean_db):
    return await _client(aiohttp_client, tmp_path, clean_db, profile="cqube")


@pytest.fixture
async def native(aiohttp_client, tmp_path, clean_db):
    return await _client(aiohttp_client, tmp_path, clean_db, profile="native")


@pytest.mark.parametrize("token", [False, True], ids=["no-token", "token"])
@pytest.mark.parametrize("method, path, service_path", WRONG_METHODS)
async def test_cqube_a_wrong_method_is_nests_404_with_or_without_a_token(cqube, method, path,
                                                                        service_path, token):
    client, headers = cqube
    resp = await client.request(method, path, headers=headers if token else {})
    assert resp.status == 404, await resp.text()  # was: 403 Forbidden resource without a token
    assert await resp.json() == {"statusCode": 404, "message": f"Cannot {method} {service_path}",
                                 "error": "Not Found"}


@pytest.mark.parametrize("path", ["/api/ingestion/new_programs", "/api/spec/schedule",
                                  "/api/spec/event"])
async def test_cqube_the_right_method_without_a_token_is_still_403(cqube, path):
    client, _ = cqube
    resp = await client.post(path, json={})
    assert resp.status == 403
    assert await resp.json() == FORBIDDEN


def _required(field: str) -> dict:
    return {"instancePath": "", "schemaPath": "#/required", "keyword": "required",
            "params": {"missingProperty": field},
            "message": f"must have required property '{field}'"}


@pytest.mark.parametrize("body, errors", [
    ({}, [_required("processor_group_name"), _required("scheduled_at")]),
    ({"processor_group_name": "Run_adapters"}, [_required("scheduled_at")]),
    ({"processor_group_name": 5, "scheduled_at": " "}, [
        {"instancePath": "/processor_group_name", "schemaPath":
         "#/properties/processor_group_name/type", "keyword": "type",
         "params": {"type": "string"}, "message": "must be string"},
        {"instancePath": "/scheduled_at", "schemaPath": "#/properties/scheduled_at/shouldnotnull",
         "keyword": "shouldnotnull", "params": {"keyword": "shouldnotnull"},
         "message": 'must pass "shouldnotnull" keyword validation'}]),
    ([], [{"instancePath": "", "schemaPath": "#/type", "keyword": "type",
           "params": {"type": "object"}, "message": "must be object"}]),
], ids=["empty", "no-scheduled-at", "types", "not-an-object"])
async def test_cqube_schedule_invalid_body_is_cqubes_ajv_400(cqube, body, errors):
    client, headers = cqube
    resp = await client.post("/api/spec/schedule", json=body, headers=headers)
    assert resp.status == 400, await resp.text()  # was: 400 unknown_kind "schedule"
    assert await resp.json() == {"message": errors}


VALID = {"processor_group_name": "Run_adapters", "scheduled_at": "0 0 6 ? * *"}


async def test_cqube_schedule_valid_body_is_501_naming_where_scheduling_lives(cqube):
    client, headers = cqube
    resp = await client.post("/api/spec/schedule", json=VALID, headers=headers)
    assert resp.status == 501, await resp.text()
    body = await resp.json()
    assert (body["statusCode"], body["error"], body["code"]) == (501, "Not Implemented",
                                                                 "not_supported")
    assert "spec-ms" in body["message"] and "NiFi" in body["message"]
    assert "processing.enabled" in body["message"]


async def test_cqube_schedule_with_processing_enabled_says_none_is_needed(aiohttp_client,
                                                                         tmp_path, clean_db):
    client, headers = await _client(aiohttp_client, tmp_path, clean_db, profile="cqube",
                                    processing=True)
    resp = await client.post("/api/spec/schedule", json=VALID, headers=headers)
    assert resp.status == 501, await resp.text()
    body = await resp.json()
    assert body["code"] == "not_supported"
    assert body["message"].startswith("no schedule is needed here: processing.enabled is on")


async def test_cqube_schedule_through_the_open_spec_api_needs_no_token(aiohttp_client, tmp_path,
                                                                      clean_db):
    client, _ = await _client(aiohttp_client, tmp_path, clean_db, profile="cqube",
                              open_spec=True)
    resp = await client.post("/api/spec/schedule", json=VALID)
    assert resp.status == 501
    resp = await client.get("/api/spec/schedule")
    assert resp.status == 404


@pytest.mark.parametrize("method, path, _", WRONG_METHODS)
async def test_native_keeps_405_with_allow_then_auth(native, method, path, _):
    client, headers = native
    resp = await client.request(method, path, headers=headers)
    if path == "/api/spec/schedule":  # no such route natively: /api/spec/{kind} takes POST only
        assert resp.status == 405
    else:
        assert resp.status == 405, await resp.text()
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
    assert resp.headers["Allow"]
    resp = await client.request(method, path)
    assert resp.status == 401  # auth comes first without a token, as before
    assert (await resp.json())["error"]["code"] == "missing_token"


async def test_native_post_schedule_is_not_a_spec_kind(native):
    client, headers = native
    resp = await client.post("/api/spec/schedule", json=VALID, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "unknown_kind"
    resp = await client.post("/api/spec/schedule", json=VALID)
    assert resp.status == 401
