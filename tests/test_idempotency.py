"""Idempotency-Key and same-bytes duplicates: an earlier result is only used for the same request.

Production app, real PostgreSQL, local storage (and SeaweedFS S3 for the race).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ingest_helpers import SPEC, landed, read_object, register, staged_left, upload
from ingest_server.stores.specs import SpecStore
from ingest_server.validation import translate_cqube_spec
from ingest_server.web import appkeys

GOOD = (b"date,school_id,teachers_present,remarks,score\n"
        b"2024-01-01,S1,10,ok,1.5\n2024-01-01,S2,abc,bad number,\n2024-01-02,S3,3,,\n")
OTHER = GOOD.replace(b"S3", b"S4")
MISSING = b"date,school_id\n2024-01-01,S1\n"


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


@pytest.mark.parametrize("change", [
    {"content": OTHER},
    {"fields": {"ingestion_type": "event", "ingestion_name": "teacherspresent",
                "program_name": "another-programme"}},
    {"params": {"encoding": "latin-1"}},
    {"params": {"max_error_rate": "0.9"}},
])
async def test_a_key_reused_for_another_request_is_422(client, auth_headers, change):
    await register(client, auth_headers)
    status, first = await upload(client, auth_headers, GOOD, extra_headers=key("k-1"))
    assert status == 200 and first["status"] == "uploaded"
    before = await landed(client)
    kw = dict(change)
    content = kw.pop("content", GOOD)
    status, body = await upload(client, auth_headers, content, extra_headers=key("k-1"), **kw)
    assert status == 422, body
    assert body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["details"]["upload_id"] == first["upload_id"]
    assert await landed(client) == before
    # The same request again is still a replay of the first answer.
    status, again = await upload(client, auth_headers, GOOD, extra_headers=key("k-1"))
    assert status == 200 and again["upload_id"] == first["upload_id"]
    assert again["idempotent_replay"] is True


async def test_a_dry_run_does_not_claim_its_key(client, auth_headers):
    await register(client, auth_headers)
    status, dry = await upload(client, auth_headers, GOOD, extra_headers=key("k-2"),
                               params={"dry_run": "true"})
    assert status == 200 and dry["dry_run"] is True and await landed(client) == []
    status, real = await upload(client, auth_headers, GOOD, extra_headers=key("k-2"))
    assert status == 200 and real["upload_id"] != dry["upload_id"]
    assert not real.get("idempotent_replay") and real["dry_run"] is False
    assert sorted(await landed(client)) == sorted([real["objects"]["valid"],
                                                   real["objects"]["errors"]])
    status, again = await upload(client, auth_headers, GOOD, extra_headers=key("k-2"))
    assert again["upload_id"] == real["upload_id"] and again["idempotent_replay"] is True


async def test_a_refusal_replays_with_its_own_status(client, auth_headers):
    await register(client, auth_headers)
    status, first = await upload(client, auth_headers, MISSING, extra_headers=key("k-3"))
    assert status == 400 and first["error"]["code"] == "missing_column"
    status, again = await upload(client, auth_headers, MISSING, extra_headers=key("k-3"))
    assert status == 400, again  # was: 200 with the refusal's record
    assert again["error"]["code"] == "missing_column"
    assert again["error"]["details"]["idempotent_replay"] is True
    assert again["error"]["details"]["upload_id"] == first["error"]["details"]["upload_id"]
    # The fixed file under the same key is another request.
    status, fixed = await upload(client, auth_headers, GOOD, extra_headers=key("k-3"))
    assert status == 422 and fixed["error"]["code"] == "idempotency_key_reused"
    assert await landed(client) == []


async def test_a_duplicate_needs_the_same_spec_version(client, auth_headers):
    await register(client, auth_headers)
    status, first = await upload(client, auth_headers, GOOD)
    assert (first["spec_version"], first["valid_rows"], first["invalid_rows"]) == (1, 2, 1)
    # The spec changes: "teachers_present" may now be any text, so every row is valid.
    spec = {**SPEC, "input": {**SPEC["input"], "properties": {
        **SPEC["input"]["properties"], "teachers_present": {"type": "string"}}}}
    await register(client, auth_headers, spec)
    status, second = await upload(client, auth_headers, GOOD)
    assert status == 200 and second["spec_version"] == 2
    assert "duplicate_of" not in second["objects"]  # was: the version 1 objects
    assert (second["valid_rows"], second["invalid_rows"]) == (3, 0)
    assert len(await read_object(client, second["objects"]["valid"])) == 4
    # The same bytes and spec version again: a duplicate of the second upload.
    status, third = await upload(client, auth_headers, GOOD)
    assert third["objects"]["duplicate_of"] == second["upload_id"]


async def test_a_spec_version_another_process_registered_is_used_at_once(client, auth_headers):
    """The service starts an upload from the spec version it saw last and learns from the
    upload's own INSERT whether the database holds a newer one: a version registered by
    another replica (its own SpecStore, nothing shared in memory) checks the very next upload."""
    await register(client, auth_headers)
    status, first = await upload(client, auth_headers, GOOD)
    assert (first["spec_version"], first["invalid_rows"]) == (1, 1)
    other_replica = SpecStore(client.app[appkeys.POOL])
    loose = {**SPEC["input"]["properties"], "teachers_present": {"type": "string"}}
    await other_replica.register(
        kind="event", name="teacherspresent", source_format="cqube", created_by="other",
        cerberus=translate_cqube_spec({**SPEC, "input": {**SPEC["input"], "properties": loose}}),
        source=None)
    status, second = await upload(client, auth_headers, OTHER)
    assert status == 200 and (second["spec_version"], second["invalid_rows"]) == (2, 0), second
    status, third = await upload(client, auth_headers, GOOD)
    assert (third["spec_version"], third["invalid_rows"]) == (2, 0)


async def test_a_duplicate_needs_the_same_encoding(client, auth_headers):
    await register(client, auth_headers)
    content = GOOD.replace(b"ok", "d\u00e9j\u00e0".encode("latin-1"))
    status, first = await upload(client, auth_headers, content, params={"encoding": "latin-1"})
    assert status == 200 and first["valid_rows"] == 2
    status, second = await upload(client, auth_headers, content, params={"encoding": "cp1252"})
    assert status == 200 and "duplicate_of" not in second["objects"]
    status, third = await upload(client, auth_headers, content, params={"encoding": "Latin_1"})
    assert third["objects"]["duplicate_of"] == first["upload_id"]


BOTH = pytest.mark.parametrize("settings", ["local", "s3"], indirect=True)


@BOTH
async def test_identical_concurrent_uploads_publish_once(client, auth_headers, settings):
    """8 identical uploads at once: one publishes, the 7 others are its duplicates (was: two
    copies published, the duplicate check and the publish being two steps)."""
    await register(client, auth_headers)
    content = GOOD + b"".join(b"2024-01-03,S%d,%d,,\n" % (i, i) for i in range(5000))
    answers = await asyncio.gather(*(upload(client, auth_headers, content) for _ in range(8)))
    assert [status for status, _ in answers] == [200] * 8, answers
    bodies = [body for _, body in answers]
    owners = [b for b in bodies if "duplicate_of" not in b["objects"]]
    assert len(owners) == 1, [b["objects"] for b in bodies]
    first = owners[0]
    ids = {b["upload_id"] for b in bodies}
    for b in bodies:
        if b is not first:  # the objects of the one that published (via another duplicate)
            assert b["objects"]["duplicate_of"] in ids - {b["upload_id"]}
            assert (b["objects"]["valid"], b["objects"]["errors"]) == \
                (first["objects"]["valid"], first["objects"]["errors"])
    assert sorted(await landed(client)) == sorted([first["objects"]["valid"],
                                                   first["objects"]["errors"]])
    assert await staged_left(client) == []
    conn = await asyncpg.connect(settings.database.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM uploads WHERE status = 'uploaded'") == 8
    finally:
        await conn.close()


@pytest.mark.parametrize("bad", ["", "x" * 201, "tab\there"])
async def test_a_malformed_key_is_refused_alike_on_file_and_json_routes(client, auth_headers,
                                                                         bad):
    """One check of the header for every upload route (was: an empty key passed as no key on
    the JSON-row routes but was refused on the file routes); nothing is written."""
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, extra_headers=key(bad))
    assert (status, body["error"]["code"]) == (400, "invalid_idempotency_key"), body
    resp = await client.post("/api/ingestion/event", headers=dict(auth_headers, **key(bad)), json={
        "event_name": "teacherspresent", "program_name": "p",
        "event": [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 1}]})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_idempotency_key"
    assert await landed(client) == [] and await staged_left(client) == []
