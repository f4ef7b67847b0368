"""Upgrades (issue 28, docs/upgrading.md): the state the previous release leaves is read back by
this one; replicas are upgraded one at a time under load; a downgrade is refused in one line.

The previous release's code is taken out of git (testkit/old_release.py) and run as a real server
on the same dependencies: its migrations, its uploads, a tus upload half-sent, an upload cut by a
SIGKILL mid-stream. Then this release starts on the same database and storage.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from conftest import TEST_CLIENT, basic, s3_settings
from ingest_server.auth import hash_secret
from ingest_server.config import StorageConfig
from ingest_server.stores.db import migration_files
from ingest_server.storage import make_storage
from ingest_server.storage.base import STAGING_DIR
from ingest_server.version import __version__, schema_version
from resumable_helpers import CSV_FIELDS, PREFIX, create, head, patch
from testkit.accounts import fresh_database
from testkit.old_release import PREVIOUS, checkout
from testkit.polling import until
from testkit.replica_cluster import (COLUMNS, SPEC, Cluster, check_landed, landed_rows, new_case,
                                     send, token)
from testkit.server_process import ServerProcess, free_port, write_config
from testkit.sql import fetch


@pytest.fixture(scope="module")
def old_code(tmp_path_factory) -> Path:
    return checkout(PREVIOUS, tmp_path_factory.mktemp(f"release-{PREVIOUS}"))


def old_migrations(code: Path) -> list[int]:
    return sorted(int(p.name.split("_", 1)[0])
                  for p in (code / "ingest_server" / "migrations").glob("*.sql"))


def server(tmp_path: Path, dsn: str, name: str, code: Path | None = None) -> ServerProcess:
    """A server on ``dsn`` and the local storage of ``tmp_path``; no jwt_secret (the signing key
    is the one generated into the database by the first release that started)."""
    config = write_config(tmp_path / f"{name}.toml", {
        "server": {"host": "127.0.0.1", "plugins_dir": str(tmp_path / "plugins"),
                   "state_dir": str(tmp_path / "state"), "shutdown_timeout_s": 10},
        "database": {"dsn": dsn, "pool_max": 4},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"clients": [{"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
                              "scopes": ["ingest", "spec", "read"]}]},
        "ingest": {"workers": 1},
    })
    process = ServerProcess(config, free_port(), tmp_path / f"{name}.log")
    process.code = code
    return process


async def read_back(s: aiohttp.ClientSession, headers: dict, upload_id: str) -> dict:
    """An upload as a client sees it: its record and the bytes of its valid and error files."""
    out = {}
    for part in ("", "/valid", "/errors"):
        async with s.get(f"/api/ingestion/uploads/{upload_id}{part}", headers=headers) as r:
            out[part or "record"] = (r.status, await (r.json() if not part else r.read()))
    return out


@pytest.fixture
def empty_db(pg_dsn):
    """A database of its own, empty: no migration of this release applied before the test's."""
    with fresh_database(pg_dsn, "upgrade") as dsn:
        yield dsn


@pytest.mark.slow
async def test_upgrade_in_place_from_the_previous_release(tmp_path, empty_db, old_code):
    dsn = empty_db
    (tmp_path / "plugins").mkdir()
    staging = tmp_path / "storage" / STAGING_DIR
    old = server(tmp_path, dsn, "old", code=old_code)
    await asyncio.to_thread(old.start)
    before: dict[str, dict] = {}
    tus_data = new_case(2000, bad_every=9)
    interrupted = new_case(60_000, wide=100)
    interrupted_key = f"cut-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession(base_url=old.url) as s:
        async with s.get("/healthz") as r:
            old_health = await r.json()
        assert "schema_version" not in old_health  # really the earlier code
        tok = await token(s, "")
        headers = {"Authorization": f"Bearer {tok}"}
        async with s.post("/api/spec/event", json=SPEC, headers=headers) as r:
            assert r.status == 201, await r.text()
        async with s.get("/api/specs/event/teacherspresent", headers=headers) as r:
            spec_before = await r.json()
        cases = [new_case(300, bad_every=7), new_case(50), new_case(1200, bad_every=4)]
        for case in cases:
            status, body = await send(s, "", tok, case)
            assert status == 200, body
            before[body["upload_id"]] = await read_back(s, headers, body["upload_id"])
        # a tus upload half-sent
        created = await create(s, headers, len(tus_data.body),
                               dict(CSV_FIELDS, ingestion_name="teacherspresent"))
        assert created.status == 201, await created.text()
        tus_url = created.headers["Location"]
        half = len(tus_data.body) // 2
        r = await patch(s, headers, tus_url, 0, tus_data.body[:half])
        assert (r.status, r.headers["Upload-Offset"]) == (204, str(half)), await r.text()
        # an upload cut mid-stream: the server dies (SIGKILL) while the body arrives
        cut = asyncio.create_task(send(s, "", tok, interrupted, key=interrupted_key, pieces=200,
                                       pause_s=0.05))

        async def receiving():
            rows = await fetch(dsn, "SELECT id FROM uploads WHERE idempotency_key = $1 "
                             "AND status = 'receiving'", interrupted_key)
            staged = [p for p in staging.rglob("*") if p.is_file() and p.stat().st_size]
            return rows and any(rows[0]["id"] in str(p) for p in staged) and rows[0]["id"]

        cut_id = await until(receiving, timeout_s=60)
        old.kill()
        assert isinstance((await asyncio.gather(cut, return_exceptions=True))[0], Exception)
    old_versions = old_migrations(old_code)
    assert [r["version"] for r in await fetch(dsn, "SELECT version FROM schema_migrations "
                                            "ORDER BY version")] == old_versions

    new = server(tmp_path, dsn, "new")
    await asyncio.to_thread(new.start)
    try:
        log = new.log_path.read_text()
        applied = [line for line in log.splitlines() if "applied migration" in line]
        expected_new = [name for version, name, _ in migration_files()
                        if version not in old_versions]
        assert [json.loads(line)["msg"].split()[-1] for line in applied] == expected_new
        rows = await fetch(dsn, "SELECT version, release FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [v for v, _, _ in migration_files()]  # each once
        assert {r["version"]: r["release"] for r in rows} == {
            v: (None if v in old_versions else __version__) for v, _, _ in migration_files()}
        async with aiohttp.ClientSession(base_url=new.url) as s:
            async with s.get("/healthz") as r:
                assert await r.json() == {"status": "ok", "version": __version__,
                                          "schema_version": schema_version()}
            headers = {"Authorization": f"Bearer {tok}"}  # signed by the earlier release
            async with s.get("/api/specs/event/teacherspresent", headers=headers) as r:
                assert r.status == 200, await r.text()
                spec_now = await r.json()
            # the spec as stored; its listing of versions is paged since 0.3.0 (CHANGELOG)
            assert _same(spec_before["latest"], spec_now["latest"])
            assert [(v["version"], v["sha256"]) for v in spec_now["versions"]] == [
                (v["version"], v["sha256"]) for v in spec_before["versions"]]
            for upload_id, seen in before.items():
                now = await read_back(s, headers, upload_id)
                assert now["/valid"] == seen["/valid"] and now["/errors"] == seen["/errors"]
                assert seen["/valid"][0] == 200 and seen["record"][0] == now["record"][0] == 200
                assert _same(seen["record"][1], now["record"][1])
            # the half-sent tus upload resumes where it stopped and lands
            h = await head(s, headers, tus_url)
            assert (h.status, h.headers["Upload-Offset"]) == (200, str(half))
            r = await patch(s, headers, tus_url, half, tus_data.body[half:])
            assert (r.status, r.headers["Upload-Status"]) == (204, "uploaded"), await r.text()
            async with s.get(r.headers["Content-Location"], headers=headers) as got:
                record = await got.json()
            assert (record["valid_rows"], record["invalid_rows"]) == (len(tus_data.valid),
                                                                      tus_data.invalid)
            storage = make_storage(StorageConfig(backend="local", root=str(tmp_path / "storage")))
            await storage.start()
            try:
                landed = await landed_rows(storage, record["objects"]["valid"])
            finally:
                await storage.close()
            assert landed == [COLUMNS] + tus_data.valid
            # the interrupted upload was failed at start-up and its staged bytes removed
            (row,) = await fetch(dsn, "SELECT status, error FROM uploads WHERE id = $1", cut_id)
            assert (row["status"], json.loads(row["error"])["code"]) == ("failed", "interrupted")
            assert not [p for p in staging.rglob("*") if p.is_file()]
            # and sent again, it lands (the key's earlier attempt failed)
            status, body = await send(s, "", tok, interrupted, key=interrupted_key)
            assert status == 200 and body["valid_rows"] == interrupted.rows, body
    finally:
        new.kill()
    again = server(tmp_path, dsn, "again")  # a second start applies nothing
    await asyncio.to_thread(again.start)
    again.kill()
    assert "applied migration" not in again.log_path.read_text()


def _same(before, after) -> bool:
    """Every field the earlier release answered is answered alike, at every depth (new fields
    may be added to any object)."""
    if isinstance(before, dict):
        return isinstance(after, dict) and all(k in after and _same(v, after[k])
                                               for k, v in before.items())
    if isinstance(before, list):
        return (isinstance(after, list) and len(before) == len(after)
                and all(_same(b, a) for b, a in zip(before, after)))
    return before == after


@pytest.mark.slow
async def test_a_database_of_a_newer_release_is_refused_in_one_line(tmp_path, empty_db):
    dsn = empty_db
    (tmp_path / "plugins").mkdir()
    current = server(tmp_path, dsn, "current")
    await asyncio.to_thread(current.start)
    current.kill()
    # what a later release leaves: one more migration, recorded with its release
    newer = schema_version() + 1
    await fetch(dsn, "INSERT INTO schema_migrations (version, name, release) "
              "VALUES ($1, $2, '99.1.0')", newer, f"{newer}_later.sql")
    tables = ("schema_migrations", "uploads", "specs", "shared_secrets", "resumable_uploads")
    snapshot = {t: await fetch(dsn, f"SELECT * FROM {t} ORDER BY 1") for t in tables}
    older = server(tmp_path, dsn, "older")
    started = time.monotonic()
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "ingest_server", "--config",
                         str(older.config), "--port", str(older.port)],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("INGEST_")})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ingest-server: cannot start: the database's schema is "
                               f"version {newer} (written by ingest-server 99.1.0)")
    assert f"this ingest-server {__version__} (schema {schema_version()})" in lines[0]
    assert time.monotonic() - started < 30
    assert {t: await fetch(dsn, f"SELECT * FROM {t} ORDER BY 1") for t in tables} == snapshot


def test_versions_agree(tmp_path):
    """``--version`` of both commands, the package metadata and pyproject.toml say one thing."""
    import tomllib
    from importlib.metadata import version

    with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["version"]
    assert __version__ == declared == version("ingest-server")
    shipped = [int(p.name.split("_")[0]) for p in
               (Path(__file__).resolve().parent.parent / "ingest_server" / "migrations").glob("*.sql")]
    assert schema_version() == max(shipped)
    bin_dir = Path(sys.executable).parent
    out = subprocess.run([bin_dir / "ingest-server", "--version"], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, f"ingest-server {declared} (schema "
                                               f"{max(shipped)})\n")
    out = subprocess.run([bin_dir / "ingest", "--version"], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, f"ingest, version {declared}\n")
    manifest = (Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "deployment.yaml")
    assert f"image: ingest-server:{declared} " in manifest.read_text()
    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text()
    assert f"\n## [{declared}] - " in changelog  # every release has its entry


async def test_healthz_and_openapi_name_the_release(client):
    async with client.get("/healthz") as r:
        assert await r.json() == {"status": "ok", "version": __version__,
                                  "schema_version": schema_version()}
    async with client.get("/api/openapi.json") as r:
        assert (await r.json())["info"]["version"] == __version__


@pytest.fixture(scope="module")
def old_cluster(tmp_path_factory, pg_dsn, s3_server, old_code):
    with fresh_database(pg_dsn, "rolling_upgrade") as dsn:
        c = Cluster(tmp_path_factory.mktemp("rolling-upgrade"), dsn, s3_settings(s3_server))
        try:
            c.start(code=old_code)
            yield c
        finally:
            c.stop()


@pytest.mark.replicas
async def test_rolling_upgrade_from_the_previous_release_under_load(old_cluster):
    """Three replicas of the previous release behind nginx; each in turn is stopped (SIGTERM)
    and started as this release while four clients keep uploading: the first one up migrates
    the database while the other two still run the earlier code on it. Nothing fails."""
    cluster = old_cluster
    storage = make_storage(StorageConfig(**cluster.storage))
    await storage.start()
    stop = asyncio.Event()
    outcomes: list[tuple] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        tok = await token(s, cluster.url)
        async with s.post(cluster.url + "/api/spec/event", json=SPEC,
                          headers={"Authorization": f"Bearer {tok}"}) as r:
            assert r.status in (200, 201), await r.text()

        async def load() -> None:
            while not stop.is_set():
                case = new_case(1500, bad_every=13)
                outcomes.append((case, await send(s, cluster.url, tok, case, pieces=10,
                                                  pause_s=0.05)))

        async def versions() -> list[str]:
            found = []
            for replica in cluster.replicas:
                async with s.get(replica.url + "/healthz") as r:
                    found.append((await r.json())["version"])
            return found

        assert __version__ not in await versions()
        loaders = [asyncio.create_task(load()) for _ in range(4)]
        try:
            await until(lambda: len(outcomes) >= 4)
            for replica in cluster.replicas:
                replica.terminate()
                assert await asyncio.to_thread(replica.wait, 40) == 0
                replica.code = None  # this release
                await asyncio.to_thread(replica.start)
                done = len(outcomes)
                await until(lambda: len(outcomes) >= done + 2)
        finally:
            stop.set()
            await asyncio.gather(*loaders)
        assert await versions() == [__version__] * 3
        failures = [(status, body) for _, (status, body) in outcomes if status != 200]
        assert not failures, failures[:3]
        try:
            for case, (_, body) in outcomes:
                await check_landed(storage, case, body)
        finally:
            await storage.close()
        # and this release serves every one of them, whichever release received it
        for case, (_, body) in outcomes:
            async with s.get(f"{cluster.url}/api/ingestion/uploads/{body['upload_id']}/valid",
                             headers={"Authorization": f"Bearer {tok}"}) as r:
                assert r.status == 200, await r.text()
                text = (await r.read()).decode()
            assert list(csv.reader(io.StringIO(text, newline=""))) == [COLUMNS] + case.valid
        rows = await fetch(cluster.dsn, "SELECT max(version) AS v FROM schema_migrations")
        assert rows[0]["v"] == schema_version()
    print(f"\nrolling upgrade {PREVIOUS} -> {__version__}: {len(outcomes)} uploads, none failed")
