"""One query on a database the test does not otherwise hold a connection to."""

from __future__ import annotations

import asyncpg


async def fetch(dsn: str, query: str, *args) -> list:
    """The rows of ``query`` on a connection of its own, closed after."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()
