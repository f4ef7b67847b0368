"""Processing jobs in the service database: one per landed event upload, with its attempts,
backoff and lease (migration 111). The state the API shows is mirrored in ``uploads.processing``:
``{status: pending|done|failed, tables, groups, finished_at, error}``."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

BACKOFF_S = (1, 5, 30, 120, 600)   # attempt n waits BACKOFF_S[n-1]; the last one repeats
MAX_ATTEMPTS = 8

SQL_STATE = ("UPDATE uploads SET processing = jsonb_build_object('status', j.status, "
             "'tables', j.tables, 'groups', j.groups, 'finished_at', j.finished_at, "
             "'error', j.error, 'attempts', j.attempts) "
             "FROM processing_jobs j WHERE j.upload_id = $1 AND uploads.id = $1")


class JobStore:
    def __init__(self, pool: asyncpg.Pool, owner: str, lease_s: float = 120.0) -> None:
        self.pool, self.owner, self.lease_s = pool, owner, lease_s

    async def enqueue(self, upload_id: str, program: str, event: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO processing_jobs (upload_id, program, event) "
                               "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                               upload_id, program, event)
            await conn.execute(SQL_STATE, upload_id)

    async def claim(self, upload_id: str) -> dict[str, Any] | None:
        """Take the job's lease if it is pending and nobody holds it; the job, else None."""
        row = await self.pool.fetchrow(
            "UPDATE processing_jobs SET lease_owner = $2, attempts = attempts + 1, "
            "lease_until = now() + make_interval(secs => $3) "
            "WHERE upload_id = $1 AND status = 'pending' "
            "AND (lease_until IS NULL OR lease_until < now()) RETURNING *",
            upload_id, self.owner, self.lease_s)
        return dict(row) if row else None

    async def renew(self, upload_id: str) -> None:
        """Extend the lease this instance holds (a long job keeps it while it works)."""
        await self.pool.execute(
            "UPDATE processing_jobs SET lease_until = now() + make_interval(secs => $3) "
            "WHERE upload_id = $1 AND lease_owner = $2", upload_id, self.owner, self.lease_s)

    async def release_mine(self) -> None:
        """Free the leases this instance holds (at shutdown)."""
        await self.pool.execute(
            "UPDATE processing_jobs SET lease_owner = NULL, lease_until = NULL "
            "WHERE lease_owner = $1 AND status = 'pending'", self.owner)

    async def due(self, limit: int = 20) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT upload_id FROM processing_jobs WHERE status = 'pending' AND next_at <= now() "
            "AND (lease_until IS NULL OR lease_until < now()) ORDER BY next_at LIMIT $1", limit)
        return [r["upload_id"] for r in rows]

    async def done(self, upload_id: str, tables: int, groups: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE processing_jobs SET status = 'done', tables = $2, groups = $3, "
                "finished_at = now(), error = NULL, lease_owner = NULL, lease_until = NULL "
                "WHERE upload_id = $1", upload_id, tables, groups)
            await conn.execute(SQL_STATE, upload_id)

    async def failed(self, upload_id: str, error: dict[str, Any], attempts: int,
                     permanent: bool = False) -> None:
        final = permanent or attempts >= MAX_ATTEMPTS
        wait = BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE processing_jobs SET status = $2, error = $3::text::jsonb, "
                "next_at = now() + make_interval(secs => $4), lease_owner = NULL, "
                "lease_until = NULL, finished_at = CASE WHEN $2 = 'failed' THEN now() END "
                "WHERE upload_id = $1", upload_id, "failed" if final else "pending",
                json.dumps(error), float(wait))
            await conn.execute(SQL_STATE, upload_id)

    async def retracted(self, upload_id: str) -> None:
        """A retracted upload is not processed any more (its contribution is out)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE processing_jobs SET status = 'done', tables = 0, "
                               "groups = 0, finished_at = now(), lease_owner = NULL, "
                               "error = NULL WHERE upload_id = $1", upload_id)
            await conn.execute(SQL_STATE, upload_id)

    async def get(self, upload_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM processing_jobs WHERE upload_id = $1",
                                       upload_id)
        return dict(row) if row else None

    async def last_done(self, program: str) -> Any:
        return await self.pool.fetchval(
            "SELECT max(finished_at) FROM processing_jobs WHERE program = $1 AND status = 'done' "
            "AND tables > 0", program)
