"""Test accounts (the clients every test config knows) and throwaway databases."""

from __future__ import annotations

import asyncio
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


class fresh_database:  # noqa: N801 — used as a function: ``with fresh_database(...) as dsn``
    """A new, empty database on the server of ``server_dsn``, dropped on exit: ``with`` in tests,
    ``async with`` inside an event loop (the benchmarks). An empty ``server_dsn`` gives "" (a
    server then starts its embedded PostgreSQL)."""

    def __init__(self, server_dsn: str, prefix: str = "ingest") -> None:
        self.server_dsn = server_dsn
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def _run(self, sql: str) -> None:
        conn = await asyncpg.connect(self.server_dsn)
        try:
            await conn.execute(sql)  # the name is ours, not user input
        finally:
            await conn.close()

    def _dsn(self) -> str:
        return _with_database(self.server_dsn, self.name) if self.server_dsn else ""

    def __enter__(self) -> str:
        if self.server_dsn:
            asyncio.run(self._run(f'CREATE DATABASE "{self.name}"'))
        return self._dsn()

    def __exit__(self, *exc: object) -> None:
        if self.server_dsn:
            asyncio.run(self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def __aenter__(self) -> str:
        if self.server_dsn:
            await self._run(f'CREATE DATABASE "{self.name}"')
        return self._dsn()

    async def __aexit__(self, *exc: object) -> None:
        if self.server_dsn:
            await self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
