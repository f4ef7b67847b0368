"""Bad input and bad luck that got a 500, a wrong status or a stuck upload (issue 11, items 2
and 4): production app, real PostgreSQL, local storage, a real full filesystem."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest

from conftest import make_settings
from ingest_helpers import form, landed, register, staged_left, upload

GOOD = (b"date,school_id,teachers_present,remarks,score\n"
        b"2024-01-01,S1,10,ok,1.5\n2024-01-02,S3,3,,\n")
FIELDS = {"ingestion_type": "event", "ingestion_name": "teacherspresent",
          "program_name": "school-attendance"}


async def statuses(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["status"] for r in await conn.fetch("SELECT status FROM uploads")]
    finally:
        await conn.close()


async def test_a_nul_in_an_error_detail_is_recorded(client, auth_headers, clean_db):
    """``encoding=utf-8<NUL>`` is refused with 400 and recorded as such (was: the NUL could not
    be stored in jsonb, so the upload stayed ``receiving`` and its key answered 409)."""
    await register(client, auth_headers)
    key = {"Idempotency-Key": "nul-1"}
    fields = dict(FIELDS, encoding="utf-8\x00")
    status, body = await upload(client, auth_headers, GOOD, fields=fields, extra_headers=key)
    assert status == 400 and body["error"]["code"] == "unknown_encoding", body
    assert await statuses(clean_db) == ["rejected"]
    status, again = await upload(client, auth_headers, GOOD, fields=fields, extra_headers=key)
    assert status == 400 and again["error"]["details"]["idempotent_replay"] is True
    resp = await client.get(f"/api/ingestion/uploads/{body['error']['details']['upload_id']}",
                            headers=auth_headers)
    record = await resp.json()
    assert record["error"]["details"]["encoding"] == "utf-8\\x00"


async def test_a_full_spool_disk_is_507_and_logged(aiohttp_client, tmp_path, clean_db,
                                                   tiny_tmpfs, caplog):
    """Fields after the file make the server spool it: on a full disk that is 507 and an error
    in the log (was: 400 ``connection_lost`` at INFO)."""
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, clean_db, server={"state_dir": str(tiny_tmpfs)})
    client = await aiohttp_client(create_app(settings))
    from conftest import TEST_CLIENT, basic

    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT))
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    await register(client, headers)
    big = GOOD + b"2024-01-03,S9,4,padding padding padding,\n" * 20_000  # ~0.9 MB > 512 KiB
    with caplog.at_level(logging.ERROR, logger="ingest_server"):
        status, body = await upload(client, headers, big, file_first=True)
    assert status == 507, body
    assert body["error"]["code"] == "insufficient_storage"
    assert any(r.levelno == logging.ERROR and "full" in r.getMessage() for r in caplog.records)
    assert list((tiny_tmpfs / "spool").iterdir()) == []
    assert await landed(client) == [] and await staged_left(client) == []
    status, body = await upload(client, headers, GOOD, file_first=True)  # room again
    assert status == 200, body
