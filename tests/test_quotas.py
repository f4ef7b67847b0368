"""Per-client quotas (issue 21 item 9), against the real app, database and local storage: tus
uploads open and bytes declared per client and against the free disk; spec versions per client
and spec; the listing of a spec's versions paged and bounded."""

from __future__ import annotations

import copy

import pytest

from conftest import TEST_CLIENT, basic, make_settings
from ingest_helpers import SPEC, register
from ingest_server.auth import hash_secret
from ingest_server.web.app import create_app
from resumable_helpers import CSV_FIELDS, PREFIX, TUS, create, sql

OTHER = ("second-office", "second-office-secret-0123456789")


def _settings(tmp_path, dsn, **sections):
    base = make_settings(tmp_path, dsn)
    clients = [{"id": c.id, "secret_sha256": c.secret_sha256, "scopes": list(c.scopes),
                "disabled": c.disabled} for c in base.auth.clients]
    clients.append({"id": OTHER[0], "secret_sha256": hash_secret(OTHER[1]),
                    "scopes": ["ingest", "spec", "read"]})
    return make_settings(tmp_path, dsn, auth={"clients": clients}, **sections)


async def _headers(client, who) -> dict[str, str]:
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*who, json=True))
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


@pytest.fixture
async def quota_app(aiohttp_client, tmp_path, clean_db):
    settings = _settings(tmp_path, clean_db, quotas={
        "resumable_open_per_client": 3, "resumable_bytes_per_client": 10_000,
        "spec_versions_per_day": 3})
    c = await aiohttp_client(create_app(settings))
    await sql(clean_db, "TRUNCATE resumable_uploads")
    mine, other = await _headers(c, TEST_CLIENT), await _headers(c, OTHER)
    await register(c, mine, spec=SPEC)
    return c, mine, other


async def _open_uploads(dsn) -> list[tuple[str, int]]:
    rows = await sql(dsn, "SELECT client, length FROM resumable_uploads "
                          "WHERE status = 'receiving' ORDER BY created_at")
    return [(r["client"], r["length"]) for r in rows]


async def test_open_resumable_uploads_per_client_are_capped(quota_app, clean_db):
    c, mine, other = quota_app
    urls = []
    for _ in range(3):
        r = await create(c, mine, 100)
        assert r.status == 201, await r.text()
        urls.append(r.headers["Location"])
    r = await create(c, mine, 100)
    body = await r.json()
    assert (r.status, body["error"]["code"]) == (429, "too_many_open_uploads"), body
    assert body["error"]["details"]["limit"] == 3 and r.headers["Tus-Resumable"] == "1.0.0"
    assert "Location" not in r.headers
    assert await _open_uploads(clean_db) == [(TEST_CLIENT[0], 100)] * 3
    r = await create(c, other, 100)  # another client has its own quota
    assert r.status == 201, await r.text()
    # Terminating one frees its place.
    r = await c.delete(urls[0], headers=dict(mine, **TUS))
    assert r.status == 204
    r = await create(c, mine, 100)
    assert r.status == 201, await r.text()


async def test_bytes_declared_per_client_are_capped(quota_app, clean_db):
    c, mine, other = quota_app
    assert (await create(c, mine, 6_000)).status == 201
    r = await create(c, mine, 5_000)
    body = await r.json()
    assert (r.status, body["error"]["code"]) == (413, "upload_quota_exceeded"), body
    assert body["error"]["details"] == {"limit": 10_000, "declared": 6_000, "requested": 5_000}
    assert (await create(c, mine, 4_000)).status == 201
    assert (await create(c, other, 9_000)).status == 201
    assert sorted(await _open_uploads(clean_db)) == [
        (OTHER[0], 9_000), (TEST_CLIENT[0], 4_000), (TEST_CLIENT[0], 6_000)]


async def test_uploads_declared_beyond_the_free_disk_are_refused(aiohttp_client, tmp_path,
                                                                 clean_db, tiny_tmpfs):
    """Local storage on a 512 KiB filesystem: an upload declaring more than its free space is
    507 at creation (was: 201, and the disk filled by a client that was told to go ahead)."""
    c = await aiohttp_client(create_app(_settings(
        tmp_path, clean_db, storage={"root": str(tiny_tmpfs)})))
    await sql(clean_db, "TRUNCATE resumable_uploads")
    mine = await _headers(c, TEST_CLIENT)
    await register(c, mine, spec=SPEC)
    assert (await create(c, mine, 300 * 1024)).status == 201
    r = await create(c, mine, 300 * 1024)  # each fits alone; both together do not
    body = await r.json()
    assert (r.status, body["error"]["code"]) == (507, "insufficient_storage"), body
    assert await _open_uploads(clean_db) == [(TEST_CLIENT[0], 300 * 1024)]


def _version(n: int) -> dict:
    spec = copy.deepcopy(SPEC)
    spec["input"]["properties"][f"extra_{n}"] = {"type": "string"}
    return spec


async def test_spec_versions_per_client_and_spec_are_capped(quota_app, clean_db):
    c, mine, other = quota_app  # version 1 registered by the fixture
    for n in range(2):
        r = await c.post("/api/spec/event", json=_version(n), headers=mine)
        assert r.status == 201, await r.text()
    r = await c.post("/api/spec/event", json=_version(9), headers=mine)
    body = await r.json()
    assert (r.status, body["error"]["code"]) == (429, "spec_version_quota"), body
    assert body["error"]["details"]["limit"] == 3
    assert 1 <= int(r.headers["Retry-After"]) <= 86400
    r = await c.post("/api/spec/event", json=_version(1), headers=mine)  # identical: a no-op
    assert r.status == 200
    r = await c.post("/api/spec/event", json=dict(_version(9), program="another"), headers=mine)
    assert r.status == 201  # another spec has its own quota
    r = await c.post("/api/spec/event", json=_version(9), headers=other)
    assert r.status == 201  # so has another client
    rows = await sql(clean_db, "SELECT name, version, created_by FROM specs ORDER BY name, version")
    assert [tuple(r) for r in rows] == [
        ("another", 1, TEST_CLIENT[0]), ("teacherspresent", 1, TEST_CLIENT[0]),
        ("teacherspresent", 2, TEST_CLIENT[0]), ("teacherspresent", 3, TEST_CLIENT[0]),
        ("teacherspresent", 4, OTHER[0])]


async def test_versions_listing_is_paged_and_bounded(aiohttp_client, tmp_path, clean_db):
    c = await aiohttp_client(create_app(_settings(tmp_path, clean_db)))
    mine = await _headers(c, TEST_CLIENT)
    await register(c, mine, spec=SPEC)
    for n in range(11):
        assert (await c.post("/api/spec/event", json=_version(n), headers=mine)).status == 201
    path = "/api/specs/event/teacherspresent"

    async def page(query: str) -> dict:
        r = await c.get(path + query, headers=mine)
        assert r.status == 200, await r.text()
        return await r.json()

    first = await page("?schemas=true")  # the console's call
    assert [v["version"] for v in first["versions"]] == [12, 11, 10, 9, 8]
    assert all("extra_%d" % (v["version"] - 2) in v["cerberus"] for v in first["versions"])
    assert first["latest"]["version"] == 12 and first["next_before"] == 8
    second = await page("?schemas=true&before=8")
    assert [v["version"] for v in second["versions"]] == [7, 6, 5, 4, 3]
    last = await page("?schemas=true&before=3")
    assert [v["version"] for v in last["versions"]] == [2, 1] and last["next_before"] is None
    assert last["latest"]["version"] == 12
    summaries = await page("")
    assert [v["version"] for v in summaries["versions"]] == list(range(12, 0, -1))
    assert all("cerberus" not in v for v in summaries["versions"])
    by_version = {v["version"]: v for v in [*first["versions"], *second["versions"],
                                           *last["versions"]]}
    assert {v["version"]: v["columns"] for v in summaries["versions"]} == \
        {n: v["columns"] for n, v in by_version.items()}
    # Versions stored before their column order was kept (migration 120) list the same columns.
    await sql(clean_db, "UPDATE specs SET columns = NULL WHERE version <= 2")
    old = (await page("?before=3"))["versions"]
    full = (await page("?schemas=true&before=3"))["versions"]
    assert [(v["version"], v["columns"]) for v in old] == \
        [(v["version"], v["columns"]) for v in full]
    assert old[0]["columns"][:3] == ["date", "school_id", "teachers_present"]  # required first
    assert sorted(old[0]["columns"]) == sorted(by_version[2]["columns"])
    assert all("cerberus" not in v for v in old)
    assert [v["version"] for v in (await page("?limit=2&before=5"))["versions"]] == [4, 3]
    for bad in ("?limit=0", "?limit=101", "?schemas=true&limit=6", "?before=x", "?limit=1e3"):
        r = await c.get(path + bad, headers=mine)
        body = await r.json()
        assert (r.status, body["error"]["code"]) == (400, "invalid_field"), (bad, body)
