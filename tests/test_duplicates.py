"""Identical files: another client's identical file lands as its own upload, a retraction retracts
the duplicates of what it retracts (also racing identical uploads and in the cqube profile), and
migration 080 fixes duplicates an earlier release left behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from clients_helpers import (DATA, OTHER, UPLOADS, VALID_ROWS, app, bearer, record, settings_for,
                             valid_of, zipped)
from conftest import TEST_CLIENT
from ingest_helpers import landed, read_object, register, upload
from ingest_server.web.appkeys import STORAGE


async def test_another_clients_identical_file_lands_as_its_own(aiohttp_client, tmp_path,
                                                               clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    mine, theirs = await bearer(c, TEST_CLIENT), await bearer(c, OTHER)
    await register(c, mine)
    _, a = await upload(c, mine, DATA)
    _, b = await upload(c, theirs, DATA)
    assert b["status"] == "uploaded" and "duplicate_of" not in b["objects"], b
    assert a["upload_id"] not in str(b)  # nothing of A's upload is shown to B
    assert not set(a["objects"].values()) & set(b["objects"].values())
    assert await read_object(c, b["objects"]["valid"]) == VALID_ROWS
    resp = await c.delete(f"{UPLOADS}/{a['upload_id']}", headers=mine)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert (await record(c, theirs, b["upload_id"]))["status"] == "uploaded"
    status, body = await valid_of(c, theirs, b["upload_id"])
    assert status == 200 and body.decode().splitlines()[1] == "2024-01-01,S1,5,fine"
    assert sorted(await landed(c)) == sorted(b["objects"].values())


@pytest.mark.parametrize("route", ["new_programs", "national_programs"])
async def test_retracting_an_upload_retracts_its_duplicates_and_the_file_lands_again(
        aiohttp_client, tmp_path, clean_db, route):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    send = (lambda: upload(c, h, DATA)) if route == "new_programs" else \
        (lambda: upload(c, h, zipped("teacherspresent.csv", DATA), fields={},
                        path="/api/ingestion/national_programs", filename="tp.zip",
                        content_type="application/zip"))
    _, first = await send()
    _, second = await send()
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    objects = sorted(await landed(c))
    resp = await c.delete(f"{UPLOADS}/{first['upload_id']}", headers=h)
    assert resp.status == 200, await resp.text()
    assert await landed(c) == []
    dup = await record(c, h, second["upload_id"])
    assert (dup["status"], dup["retracted_by"]) == ("retracted", TEST_CLIENT[0])
    status, _ = await valid_of(c, h, second["upload_id"])
    assert status == 410
    # The same bytes again land again, as this upload's own objects (not "duplicate of" a
    # retracted upload).
    _, third = await send()
    assert third["status"] == "uploaded" and "duplicate_of" not in third["objects"], third
    assert len(await landed(c)) == len(objects)
    valid = third["objects"]["valid"]
    key = valid[0] if isinstance(valid, list) else valid
    assert await read_object(c, key) == VALID_ROWS
    assert third["upload_id"] in key


async def test_retraction_racing_identical_uploads_leaves_no_record_without_its_data(
        aiohttp_client, tmp_path, clean_db):
    """The original retracted while 6 more copies of its bytes arrive at once: whatever the
    order, every upload that ends `uploaded` has its data in storage (its own objects, or an
    original that is still `uploaded`), and every retracted one's own objects are gone."""
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA)
    _, _ = await upload(c, h, DATA)  # a duplicate of it, to be retracted with it
    results = await asyncio.gather(
        c.delete(f"{UPLOADS}/{first['upload_id']}", headers=h),
        *(upload(c, h, DATA) for _ in range(6)))
    assert results[0].status == 200, await results[0].text()
    stored = set(await landed(c))
    listing = await (await c.get(UPLOADS, headers=h, params={"limit": "50"})).json()
    records = {u["upload_id"]: u for u in listing["uploads"]}
    assert len(records) == 8
    for u in records.values():
        original = records.get(u["objects"].get("duplicate_of"), u)
        keys = {original["objects"]["valid"], original["objects"]["errors"]}
        if u["status"] == "uploaded":
            assert original["status"] == "uploaded" and keys <= stored, u
            assert await read_object(c, original["objects"]["valid"]) == VALID_ROWS
        else:
            assert u["status"] == "retracted", u
            if original is u:
                assert not keys & stored, u
    assert any(u["status"] == "uploaded" for u in records.values())


async def test_retracting_a_duplicate_leaves_the_original(aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA)
    _, second = await upload(c, h, DATA)
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    resp = await c.delete(f"{UPLOADS}/{second['upload_id']}", headers=h)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert (await record(c, h, first["upload_id"]))["status"] == "uploaded"
    assert await read_object(c, first["objects"]["valid"]) == VALID_ROWS
    # and the original is still what the same bytes are a duplicate of
    _, third = await upload(c, h, DATA)
    assert third["objects"]["duplicate_of"] == first["upload_id"]


async def test_cqube_profile_duplicate_of_a_retracted_upload_is_not_uploaded(
        aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db, compat={"profile": "cqube"}))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA, filename="a.csv")
    _, second = await upload(c, h, DATA, filename="a.csv")
    assert first["message"] == second["message"] == "File is being processed"
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    assert (await c.delete(f"{UPLOADS}/{first['upload_id']}", headers=h)).status == 200
    resp = await c.get("/api/ingestion/file-status", headers=h, params={
        "filename": "a.csv", "ingestion_type": "event", "ingestion_name": "teacherspresent"})
    body = await resp.json()
    assert resp.status == 200 and body["response"]["pid"] == second["pid"]
    assert body["response"]["file_status"].startswith("Error ->"), body
    _, third = await upload(c, h, DATA, filename="a.csv")
    assert third["file_status"] == "Uploaded" and "duplicate_of" not in third["objects"]
    assert await read_object(c, third["objects"]["valid"]) == VALID_ROWS


async def test_migration_retracts_duplicates_left_pointing_at_a_retracted_upload(
        aiohttp_client, tmp_path, clean_db):
    """Records left by the earlier code (a duplicate still 'uploaded' after its original was
    retracted): migration 080 marks them retracted; meanwhile they are never anyone's
    duplicate_of."""
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA)
    _, second = await upload(c, h, DATA)
    conn = await asyncpg.connect(clean_db)
    try:  # what the earlier code did: the original retracted, its duplicate left alone
        await conn.execute("UPDATE uploads SET status = 'retracted', retracted_by = 'x', "
                           "retracted_at = now() WHERE id = $1", first["upload_id"])
        for key in first["objects"].values():
            await c.app[STORAGE].delete(key)
        _, third = await upload(c, h, DATA)
        assert "duplicate_of" not in third["objects"], third
        assert await read_object(c, third["objects"]["valid"]) == VALID_ROWS
        sql = (Path(__file__).parent.parent / "ingest_server" / "migrations" /
               "080_duplicates_follow_retraction.sql").read_text()
        await conn.execute(sql)
        rows = dict(await conn.fetch("SELECT id, status FROM uploads"))
    finally:
        await conn.close()
    assert rows == {first["upload_id"]: "retracted", second["upload_id"]: "retracted",
                    third["upload_id"]: "uploaded"}
