"""Faults injected for real: the database, the S3 server and the service itself die mid-upload,
clients stall or vanish, the disk fills up. In every case the upload ends failed (or is failed by
recovery), nothing partial is published, nothing is left staged, and the service recovers alone.

The database faults use a private pgserver (tests/pg_instance.py), never the shared PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from conftest import JWT_SECRET, TEST_CLIENT, basic, make_settings, s3_settings
from ingest_helpers import landed, register, staged_left, upload
from ingest_server.auth import hash_secret
from ingest_server.ingest.recovery import recover
from ingest_server.web import appkeys
from ingest_server.web.app import create_app
from pg_instance import PgInstance
from testkit.polling import until
from testkit.server_process import ServerProcess, free_port, write_config
from testkit.sql import fetch
from fault_helpers import HEADER, ROW, SPEC, RawUpload, get_token


async def app_client(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    token = (await resp.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    await register(client, headers, spec=SPEC)
    return client, token, headers


def staging_files(settings) -> list[Path]:
    root = Path(settings.storage.root) / ".staging"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def spool_files(settings) -> list[Path]:
    spool = settings.path(settings.server.state_dir) / "spool"
    return sorted(spool.iterdir()) if spool.is_dir() else []


# -- PostgreSQL ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def private_pg():
    pg = PgInstance()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
async def pg(private_pg):
    """The private server, running, with the service's tables emptied."""
    if private_pg.pid() is None:
        await asyncio.to_thread(private_pg.start)
    conn = await asyncpg.connect(private_pg.dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('public.uploads') IS NOT NULL"):
            await conn.execute("TRUNCATE specs, uploads")
    finally:
        await conn.close()
    return private_pg


async def test_database_stops_mid_upload_and_comes_back(aiohttp_client, tmp_path, pg):
    """PostgreSQL crashes while a file streams in: the upload answers 503 db_unavailable and
    publishes nothing; readiness follows the database down and back up; the row that could not
    be written is failed by recovery once the database is back; the next upload succeeds."""
    settings = make_settings(tmp_path, pg.dsn, ingest={"workers": 1, "stale_upload_s": 1})
    client, token, headers = await app_client(aiohttp_client, settings)
    raw = RawUpload(client.port, token, rows=20_000)
    try:
        await raw.open(rows=5_000)
        (row,) = await until(lambda: fetch(pg.dsn, "SELECT id, status FROM uploads"))
        await until(lambda: staging_files(settings))
        await asyncio.to_thread(pg.stop)  # immediate shutdown: every connection drops

        await raw.finish()
        status, body = await raw.response()
    finally:
        raw.close()
    assert (status, body["error"]["code"]) == (503, "db_unavailable")
    assert await landed(client) == [] and staging_files(settings) == []
    resp = await client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["checks"]["database"] == "db_unavailable"
    status, body = await upload(client, headers, HEADER + ROW)  # a new upload while it is down
    assert (status, body["error"]["code"]) == (503, "db_unavailable")

    await asyncio.to_thread(pg.start)

    async def ready():
        return (await client.get("/readyz")).status == 200
    await until(ready)  # the pool reconnects by itself
    # The failure could not be recorded while the database was down; the service's own periodic
    # recovery (every stale_upload_s / 2, here 0.5 s) fails the row once its heartbeat is stale.
    await until(lambda: fetch(pg.dsn, "SELECT 1 FROM uploads WHERE id = $1 AND status = "
                                "'failed'", row["id"]), every_s=0.1)
    (done,) = await fetch(pg.dsn, "SELECT status, error FROM uploads WHERE id = $1", row["id"])
    assert done["status"] == "failed" and json.loads(done["error"])["code"] == "interrupted"

    status, body = await upload(client, headers, HEADER + ROW * 3)
    assert (status, body["status"], body["valid_rows"]) == (200, "uploaded", 3)
    assert await landed(client) == [body["objects"]["valid"]]


def _server_config(tmp_path: Path, dsn: str, **database) -> Path:
    return write_config(tmp_path / "config.toml", {
        "server": {"host": "127.0.0.1", "plugins_dir": str(tmp_path / "plugins"),
                   "state_dir": str(tmp_path / "state"), "log_level": "INFO",
                   "shutdown_timeout_s": 1.0},
        "database": {"dsn": dsn, "pool_max": 4, **database},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"jwt_secret": JWT_SECRET, "clients": [
            {"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
             "scopes": ["ingest", "spec", "read"]}]},
        "ingest": {"workers": 1, "stale_upload_s": 120},
    })


async def test_start_up_waits_for_the_database(tmp_path, pg):
    """Started while PostgreSQL is down, the server keeps retrying and comes up when it does."""
    await asyncio.to_thread(pg.stop)
    server = ServerProcess(_server_config(tmp_path, pg.dsn, startup_wait_s=60.0),
                           free_port(), tmp_path / "server.log")
    server.spawn()
    try:
        await until(lambda: "database not reachable yet" in server.log(), timeout_s=30)
        assert server.process.poll() is None  # still waiting, not dead
        await asyncio.to_thread(pg.start)
        async with aiohttp.ClientSession() as session:
            async def ready():
                try:
                    async with session.get(server.url + "/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False
            await until(ready, timeout_s=30, every_s=0.1)
    finally:
        server.kill()


async def test_start_up_gives_up_after_startup_wait(tmp_path, pg):
    """A database that never comes: a clear error and a non-zero exit once startup_wait_s is up,
    not a hang and not a traceback."""
    await asyncio.to_thread(pg.stop)
    server = ServerProcess(_server_config(tmp_path, pg.dsn, startup_wait_s=1.0,
                                          connect_timeout_s=1.0),
                           free_port(), tmp_path / "server.log")
    started = time.monotonic()
    process = server.spawn()
    try:
        code = await asyncio.to_thread(process.wait, 60)
    finally:
        server.kill()
    log = server.log()
    assert code != 0, log
    assert time.monotonic() - started < 30
    assert "database not reachable" in log and "Traceback" not in log, log


# -- S3 -----------------------------------------------------------------------------------------

@pytest.fixture
def own_s3(s3_server):
    """The session's SeaweedFS, which this test kills: it is running again (same ports, same
    data) for the tests after it, whatever happens here."""
    yield s3_server
    s3_server.start()  # a no-op when it runs


async def test_s3_killed_mid_upload(aiohttp_client, tmp_path, clean_db, own_s3):
    """The S3 server dies after the first part of a multipart object is in: the upload answers
    502 storage_unavailable and is recorded failed; once S3 is back, recovery aborts the
    multipart upload the failed one could not, nothing is under the final keys, and the next
    upload succeeds."""
    settings = make_settings(tmp_path, clean_db, storage=s3_settings(own_s3),
                             ingest={"workers": 1})
    client, token, headers = await app_client(aiohttp_client, settings)
    storage = client.app[appkeys.STORAGE]
    raw = RawUpload(client.port, token, rows=60_000)
    try:
        await raw.open(rows=45_000)  # ~9.5 MB: more than one 8 MiB part
        await until(lambda: staged_left(client), timeout_s=60)  # the multipart upload exists
        await asyncio.to_thread(own_s3.kill)
        await raw.finish()
        status, body = await raw.response()
    finally:
        raw.close()
    assert (status, body["error"]["code"]) == (502, "storage_unavailable"), body
    (row,) = await fetch(clean_db, "SELECT id, status, error FROM uploads")
    assert row["status"] == "failed"
    assert json.loads(row["error"])["code"] == "storage_unavailable"

    await asyncio.to_thread(own_s3.start)
    await storage.check()
    # The abort failed with S3 down: the parts are still there until recovery retries it.
    assert await staged_left(client) != []
    await recover(client.app[appkeys.UPLOADS], storage, settings.ingest.stale_upload_s,
                  unclean=client.app[appkeys.INGEST].unclean)
    assert await staged_left(client) == []  # the multipart upload was aborted
    assert await landed(client) == []
    assert not client.app[appkeys.INGEST].unclean

    status, body = await upload(client, headers, HEADER + ROW * 3)
    assert (status, body["status"]) == (200, "uploaded")
    assert await landed(client) == [body["objects"]["valid"]]


# -- the service process itself ----------------------------------------------------------------

async def test_server_sigkilled_mid_upload_is_cleaned_at_restart(tmp_path, clean_db):
    """SIGKILL while a file streams in: the staged file stays behind with the row 'receiving';
    the restarted server fails the dead process's upload at once and removes its staged data;
    nothing was ever published."""
    (tmp_path / "plugins").mkdir()
    server = ServerProcess(_server_config(tmp_path, clean_db), free_port(), tmp_path / "server.log")
    storage_root = tmp_path / "storage"
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            token = await get_token(session, server.url)
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(server.url + "/api/spec/event", json=SPEC,
                                    headers=headers) as r:
                assert r.status == 201, await r.text()
            raw = RawUpload(server.port, token, rows=40_000)
            try:
                await raw.open(rows=15_000)  # ~3 MB: past the staged file's first flush
                (row,) = await until(lambda: fetch(clean_db, "SELECT id FROM uploads"))
                staged = await until(lambda: [p for p in (storage_root / ".staging").rglob("*")
                                              if p.is_file() and p.stat().st_size > 0])
                await asyncio.to_thread(server.kill)
            finally:
                raw.close()
            assert all(p.exists() for p in staged)  # the crash left partial data staged...
            (before,) = await fetch(clean_db, "SELECT status FROM uploads")
            assert before["status"] == "receiving"
            assert not [p for p in storage_root.rglob("*.csv") if ".staging" not in p.parts]

            await asyncio.to_thread(server.start)
            # ...and the restart failed the upload and removed it before serving.
            (after,) = await fetch(clean_db, "SELECT status, error FROM uploads")
            assert after["status"] == "failed"
            assert json.loads(after["error"])["code"] == "interrupted"
            assert not [p for p in storage_root.rglob("*") if p.is_file()]
            async with session.get(f"{server.url}/api/ingestion/uploads/{row['id']}",
                                   headers=headers) as r:
                assert (await r.json())["status"] == "failed"
    finally:
        server.kill()


# -- clients that stall or vanish ---------------------------------------------------------------

@pytest.fixture
async def watched(aiohttp_client, tmp_path, clean_db):
    """A service with a short body idle timeout, and a check that nothing leaked after a test."""
    settings = make_settings(tmp_path, clean_db, limits={"body_idle_timeout_s": 0.5},
                             ingest={"workers": 1})
    client, token, headers = await app_client(aiohttp_client, settings)
    baseline = asyncio.all_tasks()
    yield client, token, settings
    pool = client.app[appkeys.POOL]

    def no_leak():
        extra = {t for t in asyncio.all_tasks() - baseline
                 if t is not asyncio.current_task() and not t.done()}
        return (not extra and pool.get_idle_size() == pool.get_size()
                and not spool_files(settings) and not staging_files(settings))

    await until(no_leak, timeout_s=10)
    sessions = await fetch(clean_db, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid()")
    assert sessions[0]["count"] <= settings.database.pool_max


@pytest.mark.parametrize("file_first", [False, True], ids=["streamed", "spooled"])
async def test_stalled_client_gets_408_and_nothing_is_kept(watched, clean_db, file_first):
    """A client that stops sending mid-body: 408 body_timeout after body_idle_timeout_s, the
    upload (when it had started) is failed, and no temp file, task or connection is left."""
    client, token, settings = watched
    raw = RawUpload(client.port, token, rows=10_000, file_first=file_first)
    try:
        await raw.open(rows=2_000)  # ...then silence
        status, body = await raw.response(timeout_s=20)
    finally:
        raw.close()
    assert (status, body["error"]["code"]) == (408, "body_timeout")
    rows = await fetch(clean_db, "SELECT status, error FROM uploads")
    if file_first:
        assert rows == []  # still spooling: no upload had started
    else:
        assert [(r["status"], json.loads(r["error"])["code"]) for r in rows] == \
            [("failed", "body_timeout")]
    assert await landed(client) == []


async def test_slow_but_steady_client_is_served(watched, clean_db):
    """A body trickling in, each piece within the idle timeout, still completes."""
    client, token, settings = watched
    raw = RawUpload(client.port, token, rows=8)
    try:
        await raw.open()
        for _ in range(8):  # 0.8 s in all, longer than the 0.5 s idle timeout
            await raw.send(1)
            await asyncio.sleep(0.1)  # the trickle itself (the thing under test), not a wait
        await raw.finish()
        status, body = await raw.response()
    finally:
        raw.close()
    assert (status, body["status"], body["valid_rows"]) == (200, "uploaded", 8)


@pytest.mark.parametrize("file_first", [False, True], ids=["streamed", "spooled"])
async def test_client_vanishing_leaks_nothing(watched, clean_db, file_first):
    """The client's connection drops mid-body: the upload is failed (streamed) or never starts
    (spooled); staged data and spool files are removed; no task or connection is left."""
    client, token, settings = watched
    raw = RawUpload(client.port, token, rows=20_000, file_first=file_first)
    await raw.open(rows=5_000)
    if file_first:
        await until(lambda: spool_files(settings))
    else:
        await until(lambda: staging_files(settings))
    raw.vanish()
    if not file_first:
        await until(lambda: fetch(clean_db, "SELECT 1 FROM uploads WHERE status = 'failed'"))
    await until(lambda: not spool_files(settings) and not staging_files(settings))
    assert await landed(client) == []


# -- the disk fills up --------------------------------------------------------------------------

async def test_disk_full_is_507_and_nothing_partial(aiohttp_client, tmp_path, clean_db,
                                                    tiny_tmpfs):
    """Local storage on a 512 KiB tmpfs, a 2 MB upload: 507 insufficient_storage, the upload is
    failed, no object and no staged file remain; a small upload fits again afterwards."""
    settings = make_settings(tmp_path, clean_db, storage={"root": str(tiny_tmpfs)},
                             ingest={"workers": 1})
    client, token, headers = await app_client(aiohttp_client, settings)
    status, body = await upload(client, headers, HEADER + ROW * 10_000)
    assert (status, body["error"]["code"]) == (507, "insufficient_storage"), body
    (row,) = await fetch(clean_db, "SELECT status, error FROM uploads")
    assert row["status"] == "failed"
    assert json.loads(row["error"])["code"] == "insufficient_storage"
    assert await landed(client) == [] and staging_files(settings) == []

    status, body = await upload(client, headers, HEADER + ROW * 3)
    assert (status, body["status"]) == (200, "uploaded")
    assert await landed(client) == [body["objects"]["valid"]]


GOOD = (b"date,school_id,teachers_present,remarks,score\n"
        b"2024-01-01,S1,10,ok,1.5\n2024-01-02,S3,3,,\n")


async def test_a_full_spool_disk_is_507_and_logged(aiohttp_client, tmp_path, clean_db,
                                                   tiny_tmpfs, caplog):
    """Fields after the file make the server spool it: on a full disk that is 507 and an error
    in the log (was: 400 ``connection_lost`` at INFO)."""
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, clean_db, server={"state_dir": str(tiny_tmpfs)})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
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
