"""Shared by the processing tests: a processing-enabled app on the real PostgreSQL, cleaned."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from conftest import make_settings

VSK = Path(__file__).parent / "data" / "cqube-vsk"
CSV = {"Content-Type": "text/csv"}


async def reset_processing(dsn: str) -> None:
    """cQube's schemas dropped and our grammar bookkeeping emptied (each test starts bare)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS dimensions, datasets, spec, transformers "
                           "CASCADE")
        if await conn.fetchval("SELECT to_regclass('public.processing_grammars') IS NOT NULL"):
            await conn.execute("TRUNCATE processing_grammars, processing_dimension_loads")
    finally:
        await conn.close()


@pytest.fixture
async def proc_settings(tmp_path, clean_db):
    await reset_processing(clean_db)
    return make_settings(tmp_path, clean_db, processing={"enabled": True})


@pytest.fixture
async def pclient(aiohttp_client, proc_settings):
    from ingest_server.web.app import create_app
    return await aiohttp_client(create_app(proc_settings))


@pytest.fixture
async def headers(pclient):
    from conftest import TEST_CLIENT, basic
    resp = await pclient.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def put_dimension(client, headers, name, text, **params):
    resp = await client.put(f"/api/processing/grammars/dimensions/{name}", data=text.encode(),
                            headers={**headers, **CSV}, params=params)
    return resp.status, await resp.json()


async def put_event(client, headers, program, name, text):
    resp = await client.put(f"/api/processing/grammars/events/{program}/{name}",
                            data=text.encode(), headers={**headers, **CSV})
    return resp.status, await resp.json()
