"""Shared fixtures: a real PostgreSQL and a real SeaweedFS S3 server, started once per session.

PostgreSQL is the server at ``INGEST_TEST_DSN`` when set (a fresh database is created in it for
the session and dropped after), else an embedded pgserver in a temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import encode_basic_auth

from ingest_server.auth import hash_secret
from s3_server import SeaweedS3
from ingest_server.config import load_settings

TEST_CLIENT = ("test-client", "test-client-secret-0123456789")
READ_ONLY_CLIENT = ("reader", "reader-secret-0123456789abcdef")
DISABLED_CLIENT = ("old-client", "old-client-secret-0123456789")
JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4


def basic(login: str, password: str, *, json: bool = False) -> dict[str, str]:
    """Headers with HTTP Basic credentials (and ``Accept: application/json`` with ``json``: the
    token endpoint answers the bare token as text/plain otherwise)."""
    headers = {"Authorization": encode_basic_auth(login, password)}
    if json:
        headers["Accept"] = "application/json"
    return headers


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def fresh_database(server_dsn: str, prefix: str):
    """A new, empty database on the server of ``server_dsn``; dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def run(sql):
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server_dsn, name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory):
    base = os.environ.get("INGEST_TEST_DSN")
    if base:
        with fresh_database(base, "ingest_test") as dsn:
            yield dsn
        return
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.getbasetemp()))
    import pgserver

    # Not under pytest's private (0700) temp tree: as root, pgserver runs postgres as another user.
    data = Path(tempfile.mkdtemp(prefix="ingest-test-pg-"))
    data.chmod(0o755)
    server = pgserver.get_server(data, cleanup_mode="delete")
    yield server.get_uri()
    pid_file = Path(data) / "postmaster.pid"
    server.cleanup()
    if pid_file.exists():  # cleanup did not stop it: do not leave a postmaster behind
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS S3 server shared by the session; SIGTERM then SIGKILL at teardown."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


def s3_settings(server: SeaweedS3) -> dict:
    """The [storage] section for the test S3 server, in a prefix of its own."""
    return {"backend": "s3", "bucket": "ingest-tests", "endpoint_url": server.endpoint_url,
            "region": server.region, "access_key_id": server.access_key_id,
            "secret_access_key": server.secret_access_key,
            "prefix": f"t-{uuid.uuid4().hex}/"}


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 512 KiB filesystem, to fill up (mounting needs root; skipped elsewhere)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)


@pytest.fixture
async def clean_db(pg_dsn):
    """The session database with every table emptied (tables are created by the app's migrations)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.specs') IS NOT NULL")
        if exists:
            await conn.execute("TRUNCATE specs, uploads")
        if await conn.fetchval("SELECT to_regclass('public.auth_failures') IS NOT NULL"):
            await conn.execute("TRUNCATE auth_failures")  # failed logins are counted per address
    finally:
        await conn.close()
    return pg_dsn


def make_settings(tmp_path: Path, dsn: str, **sections):
    """Test settings: real database, local storage under tmp_path, known clients and secret."""
    overrides = {
        "server": {"plugins_dir": str(tmp_path / "plugins"), "state_dir": str(tmp_path / "state")},
        "database": {"dsn": dsn, "pool_max": 4, "startup_wait_s": 0.0},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"jwt_secret": JWT_SECRET, "clients": [
            {"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
             "scopes": ["ingest", "spec", "read"]},
            {"id": READ_ONLY_CLIENT[0], "secret_sha256": hash_secret(READ_ONLY_CLIENT[1]),
             "scopes": ["read"]},
            {"id": DISABLED_CLIENT[0], "secret_sha256": hash_secret(DISABLED_CLIENT[1]),
             "disabled": True},
        ]},
        "ingest": {"workers": 1},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(None, env={}, overrides=overrides)


@pytest.fixture(params=["local"])
def settings(request, tmp_path, clean_db):
    """Test settings; a test module may parametrize ``backend`` over ["local", "s3"]."""
    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    return make_settings(tmp_path, clean_db, storage=storage)


@pytest.fixture
async def client(aiohttp_client, settings):
    """A test client on the production app factory."""
    from ingest_server.web.app import create_app

    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def token(client):
    """A bearer token of the full-scope test client."""
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


@pytest.fixture
def auth_headers(token):
    return {"Authorization": f"Bearer {token}"}
