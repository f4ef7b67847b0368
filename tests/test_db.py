"""PostgreSQL set-up: migrations are idempotent; readiness follows the database."""

import asyncpg

from ingest_server.stores.db import create_pool, migrate, migration_files
from ingest_server.web import appkeys
from ingest_helpers import landed, register, staged_left, upload


async def test_migrations_apply_once(clean_db):
    pool = await create_pool(clean_db)
    try:
        await migrate(pool)  # whatever state the session left: all applied after this
        assert await migrate(pool) == []
        applied = [r["name"] for r in await pool.fetch(
            "SELECT name FROM schema_migrations ORDER BY version")]
        assert applied == [name for _, name, _ in migration_files()]
        tables = {r["tablename"] for r in await pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"specs", "uploads", "schema_migrations"} <= tables
    finally:
        await pool.close()


async def test_unreachable_database_at_start_is_a_clear_error():
    import pytest

    from ingest_server.errors import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match="not reachable"):
        await create_pool("postgresql://postgres@127.0.0.1:1/postgres", timeout=1, wait_s=0.5)


async def test_readyz_fails_when_the_database_goes(client):
    assert (await client.get("/readyz")).status == 200
    await client.app[appkeys.POOL].close()
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["checks"]["database"] == "db_unavailable"
    assert (await client.get("/healthz")).status == 200


async def test_spec_reads_fail_503_when_the_database_goes(client, auth_headers):
    await client.app[appkeys.POOL].close()
    resp = await client.get("/api/specs", headers=auth_headers)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "db_unavailable"


async def test_uploads_fail_503_when_the_database_goes(client, auth_headers):
    """An upload while the database is gone (its spec registered before): 503, nothing landed or
    staged."""
    await register(client, auth_headers)
    await client.app[appkeys.POOL].close()
    status, body = await upload(client, auth_headers, b"date,school_id,teachers_present\n"
                                b"2024-01-01,S1,5\n")
    assert (status, body["error"]["code"]) == (503, "db_unavailable"), body
    assert await landed(client) == [] and await staged_left(client) == []


def test_command_line_check(tmp_path, capsys):
    from ingest_server.main import main

    assert main(["--config", "config.toml", "--check"]) == 0
    assert "configuration OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = -1\n")
    assert main(["--config", str(bad), "--check"]) == 2
    assert "server.port" in capsys.readouterr().err
