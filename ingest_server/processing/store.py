"""Registered grammars and dimension loads, in the service's database (migration 100).

A grammar's identity is ``(kind, program, name)`` (``program`` is empty but for event grammars);
each distinct body is a new version, so sending the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ..stores.db import stored

COLUMNS = "kind, program, name, version, body, sha256, created_at, created_by"
SQL_LATEST = ("SELECT " + COLUMNS + " FROM processing_grammars WHERE kind = $1 AND program = $2 "
              "AND name = $3 ORDER BY version DESC LIMIT 1")
SQL_VERSIONS = ("SELECT " + COLUMNS + " FROM processing_grammars WHERE kind = $1 AND program = $2"
                " AND name = $3 ORDER BY version DESC")
SQL_INSERT = ("INSERT INTO processing_grammars (kind, program, name, version, body, sha256, "
              "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING " + COLUMNS)
SQL_LIST = ("SELECT DISTINCT ON (kind, program, name) " + COLUMNS + " FROM processing_grammars "
            "WHERE ($1::text IS NULL OR kind = $1) ORDER BY kind, program, name, version DESC")
SQL_RECORD_LOAD = ("INSERT INTO processing_dimension_loads (dimension, upload_id, rows, error) "
                   "VALUES ($1, $2, $3, $4)")
SQL_LAST_LOADS = ("SELECT DISTINCT ON (dimension) dimension, upload_id, rows, error, loaded_at "
                  "FROM processing_dimension_loads WHERE error IS NULL "
                  "ORDER BY dimension, loaded_at DESC")


@dataclass(frozen=True)
class StoredGrammar:
    kind: str
    program: str
    name: str
    version: int
    body: str
    sha256: str
    created_at: datetime | None
    created_by: str | None

    def to_json(self, *, with_body: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "version": self.version,
                               "sha256": self.sha256,
                               "created_at": self.created_at.isoformat() if self.created_at
                               else None, "created_by": self.created_by}
        if self.kind == "event":
            out["program"] = self.program
        if with_body:
            out["body"] = self.body
        return out


def _row(r: asyncpg.Record) -> StoredGrammar:
    return StoredGrammar(**dict(r))


class GrammarStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @stored
    async def register(self, *, kind: str, program: str, name: str, body: str,
                       created_by: str | None) -> tuple[StoredGrammar, bool]:
        """Store ``body``; ``(grammar, created)``, ``created`` False for the same body again."""
        sha = hashlib.sha256(body.encode("utf-8")).hexdigest()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                               f"grammar:{kind}:{program}:{name}")
            latest = await conn.fetchrow(SQL_LATEST, kind, program, name)
            if latest is not None and latest["sha256"] == sha:
                return _row(latest), False
            version = 1 if latest is None else latest["version"] + 1
            row = await conn.fetchrow(SQL_INSERT, kind, program, name, version, body, sha,
                                      created_by)
            return _row(row), True

    @stored
    async def latest(self, kind: str, program: str, name: str) -> StoredGrammar | None:
        row = await self.pool.fetchrow(SQL_LATEST, kind, program, name)
        return None if row is None else _row(row)

    @stored
    async def versions(self, kind: str, program: str, name: str) -> list[StoredGrammar]:
        return [_row(r) for r in await self.pool.fetch(SQL_VERSIONS, kind, program, name)]

    @stored
    async def list_latest(self, kind: str | None = None) -> list[StoredGrammar]:
        return [_row(r) for r in await self.pool.fetch(SQL_LIST, kind)]

    @stored
    async def record_load(self, dimension: str, upload_id: str | None, rows: int,
                          error: dict[str, Any] | None = None) -> None:
        await self.pool.execute(SQL_RECORD_LOAD, dimension, upload_id, rows, error)

    @stored
    async def last_loads(self) -> dict[str, dict[str, Any]]:
        return {r["dimension"]: {"upload_id": r["upload_id"], "rows": r["rows"],
                                 "loaded_at": r["loaded_at"].isoformat()}
                for r in await self.pool.fetch(SQL_LAST_LOADS)}
