"""Who owns an object key in ``storage.layout = "cqube"`` (``stores/object_owners.py``): a replaced
upload is told, a retraction deletes only what its upload still owns, and the migration that
gives each existing key to its latest upload."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import asyncpg
import pytest

from clients_helpers import (CQUBE_FORM, CQUBE_SPEC, OTHER, UPLOADS, app, bearer, record,
                             settings_for, valid_of, zipped)
from conftest import RAWDATA_CLIENT as PULLER, TEST_CLIENT, s3_settings
from ingest_helpers import landed, read_object, register, upload
from ingest_server.web.appkeys import SETTINGS


@pytest.fixture(params=["local", "s3"])
async def cqube_layout(request, aiohttp_client, tmp_path, clean_db):
    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db,
                                               storage={**storage, "layout": "cqube"}))
    await register(c, await bearer(c, TEST_CLIENT), CQUBE_SPEC)
    return c


async def test_a_replaced_upload_is_told_and_its_retraction_spares_the_replacement(cqube_layout):
    c = cqube_layout
    mine, theirs = await bearer(c, TEST_CLIENT), await bearer(c, OTHER)
    _, a = await upload(c, mine, b"school_name,students\nA-school,1\n", fields=CQUBE_FORM)
    _, b = await upload(c, theirs, b"school_name,students\nB-school,2\n", fields=CQUBE_FORM)
    key = a["objects"]["valid"]
    assert b["objects"]["valid"] == key  # same name, same day: B replaced A's object
    ra = await record(c, mine, a["upload_id"])
    assert [(r["part"], r["key"]) for r in ra["replaced"]] == [("valid", key)]
    assert ra["replaced"][0]["by_upload_id"] is None  # another client's: not named
    assert b["upload_id"] not in str(ra)
    status, body = await valid_of(c, mine, a["upload_id"])
    assert status == 410 and b"B-school" not in body
    assert (await c.get(f"{UPLOADS}/{a['upload_id']}/valid", headers=mine)).status == 410
    # A retracts: only what A still owns goes (nothing here: it had no error file).
    resp = await c.delete(f"{UPLOADS}/{a['upload_id']}", headers=mine)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert await read_object(c, key) == [["school_name", "students"], ["'B-school'", "2"]]
    assert (await record(c, theirs, b["upload_id"]))["status"] == "uploaded"
    status, body = await valid_of(c, theirs, b["upload_id"])
    assert status == 200 and b"B-school" in body
    assert "replaced" not in await record(c, theirs, b["upload_id"])


async def test_own_replacement_is_named_and_the_owner_retraction_removes_the_object(cqube_layout):
    c = cqube_layout
    h = await bearer(c, TEST_CLIENT)
    _, a1 = await upload(c, h, b"school_name,students\nFirst,1\nbad,x\n", fields=CQUBE_FORM)
    _, a2 = await upload(c, h, b"school_name,students\nSecond,2\n", fields=CQUBE_FORM)
    r1 = await record(c, h, a1["upload_id"])
    assert [(r["part"], r["by_upload_id"]) for r in r1["replaced"]] == [
        ("valid", a2["upload_id"])]
    # A1's error file is its own (one per upload): a retraction of A1 deletes it and only it.
    resp = await c.delete(f"{UPLOADS}/{a1['upload_id']}", headers=h)
    assert resp.status == 200
    assert sorted(await landed(c)) == [a2["objects"]["valid"]]
    assert await read_object(c, a2["objects"]["valid"]) == [["school_name", "students"],
                                                             ["'Second'", "2"]]
    resp = await c.delete(f"{UPLOADS}/{a2['upload_id']}", headers=h)
    assert resp.status == 200 and await landed(c) == []


RAW = "/api/ingestion/getRawData"


async def test_migration_gives_each_existing_key_to_its_latest_upload(cqube_layout):
    """Migration 081 on objects published before ownership was recorded: each key belongs to
    the latest upload that wrote it, so a retraction of the earlier one spares it."""
    c = cqube_layout
    h = await bearer(c, TEST_CLIENT)
    _, a1 = await upload(c, h, b"school_name,students\nFirst,1\n", fields=CQUBE_FORM)
    _, a2 = await upload(c, h, b"school_name,students\nSecond,2\n", fields=CQUBE_FORM)
    sql = (Path(__file__).parent.parent / "ingest_server" / "migrations" /
           "081_object_owners.sql").read_text()
    conn = await asyncpg.connect(c.app[SETTINGS].database.dsn)
    try:  # as before the migration: no ownership recorded, no `replaced`
        await conn.execute("TRUNCATE object_owners")
        await conn.execute("UPDATE uploads SET replaced = NULL")
        await conn.execute(sql)
        owners = dict(await conn.fetch("SELECT key, upload_id FROM object_owners"))
    finally:
        await conn.close()
    assert owners == {a2["objects"]["valid"]: a2["upload_id"]}
    assert (await c.delete(f"{UPLOADS}/{a1['upload_id']}", headers=h)).status == 200
    assert await read_object(c, a2["objects"]["valid"]) == [["school_name", "students"],
                                                             ["'Second'", "2"]]


async def test_when_the_replacing_upload_is_retracted_the_replaced_one_stays_without_it(
        cqube_layout):
    """A national ZIP sent twice on one day (the cqube layout: one emission file), then the later
    one retracted: its object is gone, and the earlier upload neither offers a link to it
    (getRawData) nor claims it back (410 object_replaced, not a 404 of a file it owned)."""
    c = cqube_layout
    h, pull = await bearer(c, TEST_CLIENT), await bearer(c, PULLER)

    async def send(rows: bytes):
        _, body = await upload(c, h, zipped("schools.csv", b"school_name,students\n" + rows),
                               fields={}, path="/api/ingestion/national_programs",
                               filename="schools.zip", content_type="application/zip")
        assert body["status"] == "uploaded", body
        return body

    async def links():
        resp = await c.post(RAW, json={"program_names": ["schools"]}, headers=pull)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["data"][0]["urls"]

    first = await send(b"First,1\n")
    second = await send(b"Second,2\n")
    [key] = second["objects"]["valid"]
    assert first["objects"]["valid"] == [key]
    [link] = await links()
    async with aiohttp.ClientSession() as session, session.get(link) as got:  # S3 or us
        assert got.status == 200 and b"'Second',2" in await got.read()
    assert (await c.delete(f"{UPLOADS}/{second['upload_id']}", headers=h)).status == 200
    assert key not in await landed(c)
    assert await links() == []
    resp = await c.get(f"{UPLOADS}/{first['upload_id']}/valid", headers=h,
                       params={"member": "schools"})
    body = await resp.json()
    assert resp.status == 410 and body["error"]["code"] == "object_replaced", body
    assert body["error"]["details"]["by_upload_id"] == second["upload_id"]
