"""The ``resumable_uploads`` table: where each tus upload stands, shared by every instance.

``upload_offset`` only moves once the bytes before it are durable in staging, so it is the truth
after any crash. One request at a time holds an upload through a lease (``lease_token`` until
``lease_until``, refreshed while it works): a second PATCH gets 423, and a lease left by a killed
process simply runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import asyncpg

from .db import stored

COLUMNS = ("id, client, length, upload_offset, request, metadata, status, upload_id, "
           "upload_status, lease_until, created_at, expires_at, expires_at < now() AS expired")
SQL_CREATE = ("INSERT INTO resumable_uploads (id, client, length, request, metadata, expires_at) "
              "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) "
              "RETURNING " + COLUMNS)
# Under a per-client transaction lock, so two creations at once cannot both fit the last place.
SQL_LOCK_CLIENT = "SELECT pg_advisory_xact_lock(hashtext($1))"
SQL_HELD = ("SELECT count(*) FILTER (WHERE client IS NOT DISTINCT FROM $1) AS open, "
            "coalesce(sum(length) FILTER (WHERE client IS NOT DISTINCT FROM $1), 0) AS declared, "
            "coalesce(sum(length - upload_offset), 0) AS outstanding "
            "FROM resumable_uploads WHERE status = 'receiving' AND expires_at >= now()")
SQL_GET = ("SELECT " + COLUMNS + " FROM resumable_uploads "
           "WHERE id = $1 AND client IS NOT DISTINCT FROM $2")
SQL_LEASE = ("UPDATE resumable_uploads SET lease_token = $3, "
             "lease_until = now() + make_interval(secs => $4) "
             "WHERE id = $1 AND client IS NOT DISTINCT FROM $2 "
             "AND (lease_until IS NULL OR lease_until < now()) RETURNING " + COLUMNS)
SQL_REFRESH = ("UPDATE resumable_uploads SET lease_until = now() + make_interval(secs => $3) "
               "WHERE id = $1 AND lease_token = $2")
SQL_RELEASE = ("UPDATE resumable_uploads SET lease_token = NULL, lease_until = NULL "
               "WHERE id = $1 AND lease_token = $2")
SQL_OFFSET = ("UPDATE resumable_uploads SET upload_offset = $3, updated_at = now() "
              "WHERE id = $1 AND lease_token = $2 AND status = 'receiving'")
SQL_DONE = ("UPDATE resumable_uploads SET status = 'done', upload_id = $3, upload_status = $4, "
            "updated_at = now() WHERE id = $1 AND lease_token = $2")
SQL_TERMINATE = ("UPDATE resumable_uploads SET status = 'terminated', updated_at = now() "
                 "WHERE id = $1 AND lease_token = $2")
SQL_EXPIRED = ("SELECT id, status FROM resumable_uploads WHERE expires_at < now() "
               "AND (lease_until IS NULL OR lease_until < now()) ORDER BY expires_at LIMIT $1")
SQL_DELETE = "DELETE FROM resumable_uploads WHERE id = $1 AND expires_at < now()"


@dataclass(frozen=True)
class Held:
    """Unfinished uploads at creation time: the client's count and declared bytes, and the bytes
    every client still has to send (what staging must still take)."""

    open: int
    declared: int
    outstanding: int


def _row(r: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(r) if r is not None else None


class ResumableStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @stored
    async def create(self, *, tus_id: str, client: str | None, length: int,
                     request: dict[str, Any], metadata: str, expire_s: float,
                     admit: Callable[[Held], Awaitable[None]] | None = None) -> dict[str, Any]:
        """Insert the upload; ``admit`` sees what the client (and everyone) holds first and may
        refuse, under a lock per client so concurrent creations are counted one by one."""
        async with self.pool.acquire() as conn, conn.transaction():
            if admit is not None:
                await conn.execute(SQL_LOCK_CLIENT, f"tus-quota:{client}")
                held = await conn.fetchrow(SQL_HELD, client)
                await admit(Held(open=int(held["open"]), declared=int(held["declared"]),
                                 outstanding=int(held["outstanding"])))
            return _row(await conn.fetchrow(SQL_CREATE, tus_id, client, length, request,
                                            metadata, float(expire_s)))

    @stored
    async def get(self, tus_id: str, client: str | None) -> dict[str, Any] | None:
        """The upload if it exists and belongs to ``client`` (another client's is "none")."""
        return _row(await self.pool.fetchrow(SQL_GET, tus_id, client))

    @stored
    async def lease(self, tus_id: str, client: str | None, token: str,
                    lease_s: float) -> dict[str, Any] | None:
        """Take the upload for one request; None when another request holds it."""
        return _row(await self.pool.fetchrow(SQL_LEASE, tus_id, client, token, float(lease_s)))

    @stored
    async def refresh(self, tus_id: str, token: str, lease_s: float) -> None:
        await self.pool.execute(SQL_REFRESH, tus_id, token, float(lease_s))

    @stored
    async def release(self, tus_id: str, token: str) -> None:
        await self.pool.execute(SQL_RELEASE, tus_id, token)

    @stored
    async def set_offset(self, tus_id: str, token: str, offset: int) -> bool:
        return await self.pool.execute(SQL_OFFSET, tus_id, token, offset) == "UPDATE 1"

    @stored
    async def done(self, tus_id: str, token: str, upload_id: str, upload_status: str) -> None:
        await self.pool.execute(SQL_DONE, tus_id, token, upload_id, upload_status)

    @stored
    async def terminate(self, tus_id: str, token: str) -> None:
        await self.pool.execute(SQL_TERMINATE, tus_id, token)

    @stored
    async def expired(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.pool.fetch(SQL_EXPIRED, limit)]

    @stored
    async def delete_expired(self, tus_id: str) -> None:
        await self.pool.execute(SQL_DELETE, tus_id)
