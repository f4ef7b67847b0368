"""The spec API against a real PostgreSQL: every real cQube sample registers, versions, lists."""

from __future__ import annotations

import io
import json
from pathlib import Path

import asyncpg
import pytest

from ingest_server.validation import translate_cqube_spec

SAMPLES = Path(__file__).resolve().parent / "data" / "cqube" / "specs"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.json"))


def kind_of(path: Path) -> str:
    return "dimension" if "dimensions" in path.parts else "event"


def test_samples_are_there():
    assert len(SAMPLE_FILES) >= 20


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
async def test_every_sample_registers(client, auth_headers, clean_db, path):
    body = json.loads(path.read_text())
    kind = kind_of(path)
    resp = await client.post(f"/api/spec/{kind}", json=body, headers=auth_headers)
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert out["created"] is True
    assert out["spec"]["version"] == 1
    assert out["spec"]["cerberus"] == translate_cqube_spec(body)
    # Stored in PostgreSQL with the original body.
    conn = await asyncpg.connect(clean_db)
    try:
        row = await conn.fetchrow("SELECT source::text, cerberus::text, created_by FROM specs "
                                  "WHERE kind = $1 AND name = $2", kind, body["program"])
    finally:
        await conn.close()
    assert json.loads(row["source"]) == body
    assert json.loads(row["cerberus"]) == out["spec"]["cerberus"]
    assert row["created_by"] == "test-client"
    # Every column of the spec is in the schema, with cQube's required list honoured (as in JSON
    # Schema, a required name missing from the properties is still required: one real sample
    # has the typo "state_ode" in its properties and "state_code" in its required list).
    schema = out["spec"]["cerberus"]
    assert set(schema) == set(body["input"]["properties"]) | set(body["input"]["required"])
    for col in body["input"]["required"]:
        assert schema[col].get("required") is True


async def test_versioning(client, auth_headers):
    spec = {"program": "versioned", "input": {"type": "object", "properties": {
        "a": {"type": "string", "shouldnotnull": True}}, "required": ["a"]}}
    first = await client.post("/api/spec/event", json=spec, headers=auth_headers)
    assert first.status == 201
    again = await client.post("/api/spec/event", json=spec, headers=auth_headers)
    assert again.status == 200
    assert (await again.json())["created"] is False
    assert (await again.json())["spec"]["version"] == 1
    spec["input"]["properties"]["b"] = {"type": "number"}
    changed = await client.post("/api/spec/event", json=spec, headers=auth_headers)
    assert changed.status == 201
    assert (await changed.json())["spec"]["version"] == 2
    # The same name under another kind is another spec.
    other = await client.post("/api/spec/dimension", json=spec, headers=auth_headers)
    assert (await other.json())["spec"]["version"] == 1

    resp = await client.get("/api/specs/event/versioned", headers=auth_headers)
    body = await resp.json()
    assert [v["version"] for v in body["versions"]] == [2, 1]
    assert set(body["latest"]["cerberus"]) == {"a", "b"}
    listing = await (await client.get("/api/specs", headers=auth_headers)).json()
    assert {(s["kind"], s["name"], s["version"]) for s in listing["specs"]} == {
        ("event", "versioned", 2), ("dimension", "versioned", 1)}
    only = await (await client.get("/api/specs?kind=dimension", headers=auth_headers)).json()
    assert [s["kind"] for s in only["specs"]] == ["dimension"]


@pytest.mark.parametrize("body, code, keyword", [
    ({"program": "x", "input": {"type": "object", "properties": {
        "a": {"type": "string", "anyOf": [{"pattern": "^a"}]}}, "required": []}}, "invalid_spec",
     "anyOf"),
    ({"program": "x", "input": {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "(^a"}}, "required": []}}, "invalid_spec", "pattern"),
    ({"program": "x", "input": {"type": "object", "properties": {
        "a": {"type": "strin"}}, "required": []}}, "invalid_spec", "type"),
    ({"program": "x", "input": {"type": "object", "properties": {
        "a": {"type": "string", "shouldnotnull": "yes"}}, "required": []}}, "invalid_spec",
     "shouldnotnull"),
    ({"program": "x", "extra": 1, "input": {"type": "object", "properties": {}, "required": []}},
     "invalid_spec", "extra"),
    ({"input": {"type": "object", "properties": {}, "required": []}}, "invalid_spec", "program"),
])
async def test_bad_specs_are_400_naming_the_keyword(client, auth_headers, body, code, keyword):
    resp = await client.post("/api/spec/event", json=body, headers=auth_headers)
    assert resp.status == 400, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == code
    assert keyword in err["message"]


async def test_bad_bodies(client, auth_headers):
    resp = await client.post("/api/spec/event", data=b"{not json", headers=auth_headers)
    assert (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post("/api/spec/event", json=[1], headers=auth_headers)
    assert (await resp.json())["error"]["code"] == "invalid_spec"
    resp = await client.post("/api/spec/events", json={}, headers=auth_headers)
    assert (await resp.json())["error"]["code"] == "unknown_kind"
    spec = {"program": "../etc", "input": {"type": "object", "properties": {
        "a": {"type": "string"}}, "required": []}}
    resp = await client.post("/api/spec/event", json=spec, headers=auth_headers)
    assert (await resp.json())["error"]["code"] == "invalid_name"
    resp = await client.post("/api/spec/event", data=io.BytesIO(b"x" * (1024 * 1024 + 10)),
                             headers=auth_headers)
    assert resp.status == 413


async def test_native_cerberus_schema(client, auth_headers):
    schema = {"cerberus": {"id": {"type": "integer", "coerce": "integer", "required": True},
                           "grade": {"type": "string", "allowed": ["A", "B"]}}}
    resp = await client.put("/api/specs/dataset/grades", json=schema, headers=auth_headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["spec"]["source_format"] == "cerberus"
    bad = {"cerberus": {"id": {"type": "integer", "nosuchrule": 1}}}
    resp = await client.put("/api/specs/dataset/grades", json=bad, headers=auth_headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_spec"
    assert "nosuchrule" in (await resp.json())["error"]["message"]


async def test_unknown_spec_is_404(client, auth_headers):
    resp = await client.get("/api/specs/event/nothing", headers=auth_headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "spec_not_found"


@pytest.mark.parametrize("regex", ["(unclosed", "[z-a]", "a{2,1}"])
async def test_a_bad_regex_is_refused_when_the_spec_is_registered(client, auth_headers, clean_db,
                                                                  regex):
    resp = await client.put("/api/specs/event/rx", headers=auth_headers,
                            json={"cerberus": {"a": {"type": "string", "regex": regex}}})
    assert resp.status == 400, await resp.text()  # was: 201, then a 500 for every upload
    body = await resp.json()
    assert body["error"]["code"] == "invalid_spec" and body["error"]["details"]["keyword"] == \
        "regex"
    resp = await client.put("/api/specs/event/rx", headers=auth_headers, json={"cerberus": {
        "a": {"type": "string", "oneof": [{"regex": regex}, {"maxlength": 1}]}}})
    assert resp.status == 400
