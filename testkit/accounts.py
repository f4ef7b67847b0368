"""Test accounts (the clients every test config knows) and throwaway databases."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiohttp import encode_basic_auth

TEST_CLIENT = ("test-client", "test-client-secret-0123456789")
READ_ONLY_CLIENT = ("reader", "reader-secret-0123456789abcdef")
DISABLED_CLIENT = ("old-client", "old-client-secret-0123456789")
RAWDATA_CLIENT = ("state-instance", "state-instance-secret-0123456789")  # read + rawdata
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
