"""The ``uploads`` table: one row per upload, from its first byte to its outcome.

An upload in progress refreshes ``heartbeat_at``; one whose heartbeat is older than
``ingest.stale_upload_s`` was left by a crashed process (of any replica) and is failed by
:meth:`UploadStore.fail_stale`, so nothing stays "receiving" forever.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterable, TypedDict

import asyncpg

from . import object_owners
from .db import stored, transaction, unique_violation

STATUSES = ("receiving", "uploaded", "rejected", "failed")
RETRACT_STATUSES = ("retracting", "retracted")  # set by retraction.py, never by an upload
COLUMNS = ("id, pid, route, client, filename, sha256, kind, program, ingestion_name, spec_version, "
           "status, dry_run, idempotency_key, bytes, total_rows, valid_rows, invalid_rows, objects, "
           "members, errors_sample, error, started_at, heartbeat_at, finished_at, warnings, "
           "retracted_at, retracted_by, retract_error, request_fingerprint, http_status, "
           "read_sha256, read_complete, replaced, processing")
SQL_INSERT = ("INSERT INTO uploads (id, route, client, filename, kind, program, ingestion_name, "
              "status, dry_run, idempotency_key, owner, request_fingerprint) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, 'receiving', $8, $9, $10, $11) "
              # the latest version of the spec the upload is checked against, in the same trip
              "RETURNING (SELECT max(version) FROM specs WHERE kind = $12 AND name = $13)")
SQL_GET = "SELECT " + COLUMNS + " FROM uploads WHERE id = $1"
SQL_BY_KEY = ("SELECT " + COLUMNS + " FROM uploads WHERE client IS NOT DISTINCT FROM $1 "
              "AND idempotency_key = $2 AND status <> 'failed'")
# A duplicate's objects are its original's: an upload whose original is no longer 'uploaded'
# (retracted by an earlier version that left its duplicates alone) is nobody's duplicate_of.
SQL_DUPLICATE = ("SELECT " + COLUMNS + " FROM uploads u WHERE dedup_key = $1 "
                 "AND status = 'uploaded' AND NOT dry_run AND id <> $2 "
                 "AND started_at > now() - make_interval(secs => $3) "
                 "AND NOT EXISTS (SELECT 1 FROM uploads o WHERE o.id = u.objects->>'duplicate_of' "
                 "AND o.status <> 'uploaded') "
                 "ORDER BY started_at DESC LIMIT 1")
# One duplicate check and publish at a time per dedup key: (namespace, 32 bits of the key).
DEDUP_LOCK_SPACE = 1229210433
SQL_DEDUP_LOCK = "SELECT pg_advisory_xact_lock(1229210433, $1)"
# Several advisory locks in one round trip, taken in the arrays' order ((namespace, id) pairs):
# a function scan is evaluated row by row, in order.
SQL_LOCK_ALL = ("SELECT count(pg_advisory_xact_lock(space, id)) "
                "FROM unnest($1::int[], $2::int[]) AS t(space, id)")
SQL_FINISH = ("UPDATE uploads SET status = $2, sha256 = $3, bytes = $4, total_rows = $5, "
              "valid_rows = $6, invalid_rows = $7, objects = $8, members = $9, errors_sample = $10, "
              "error = $11, spec_version = $12, warnings = $13, http_status = $14, "
              "read_sha256 = $15, read_complete = $16, dedup_key = $17, finished_at = now(), "
              "heartbeat_at = now() "
              "WHERE id = $1 AND status = 'receiving' RETURNING " + COLUMNS)
# The same, for an upload that just published its objects, and in the same statement what
# ``object_owners.claim`` does: the keys ($18, parts $19) become this upload's (client $20), and
# an earlier owner's record lists those it lost (at $21). One round trip instead of one or more
# per key; every part of it sees the table as it was before the statement.
SQL_FINISH_CLAIMING = (
    "WITH parts AS (SELECT key, part, n FROM unnest($18::text[], $19::text[]) "
    "WITH ORDINALITY AS t(key, part, n)), "
    "earlier AS (SELECT p.n, p.part, p.key, o.upload_id, "
    "coalesce(o.client = $20::text, false) AS same FROM parts p "
    "JOIN object_owners o ON o.key = p.key WHERE o.upload_id <> $1), "
    "claimed AS (INSERT INTO object_owners (key, upload_id, client) "
    "SELECT key, $1, $20::text FROM parts ON CONFLICT (key) DO UPDATE "
    "SET upload_id = EXCLUDED.upload_id, client = EXCLUDED.client), "
    "lost AS (UPDATE uploads u SET replaced = coalesce(u.replaced, '[]'::jsonb) || e.items "
    "FROM (SELECT upload_id, jsonb_agg(jsonb_build_object('part', part, 'key', key, "
    "'at', $21::text, 'by_upload_id', CASE WHEN same THEN $1 END, 'by_same_client', same) "
    "ORDER BY n) AS items FROM earlier GROUP BY upload_id) e "
    "WHERE u.id = e.upload_id AND u.status <> 'retracted') "
    + SQL_FINISH)
SQL_HEARTBEAT = "UPDATE uploads SET heartbeat_at = now(), bytes = $2 WHERE id = $1 AND status = 'receiving'"
SQL_FAIL_STALE = ("UPDATE uploads SET status = 'failed', finished_at = now(), "
                  "error = jsonb_build_object('code', 'interrupted', 'message', "
                  "'the server stopped while this upload was in progress') "
                  "WHERE status = 'receiving' AND heartbeat_at < now() - make_interval(secs => $1) "
                  "RETURNING id")
SQL_RECEIVING_ON_HOST = ("SELECT id, owner FROM uploads WHERE status = 'receiving' "
                         "AND owner LIKE $1")
SQL_FAIL_ONE = ("UPDATE uploads SET status = 'failed', finished_at = now(), "
                "error = jsonb_build_object('code', 'interrupted', 'message', "
                "'the server stopped while this upload was in progress') "
                "WHERE id = $1 AND status = 'receiving'")
LIST_WHERE = ("WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR route = $2) "
              "AND ($3::text IS NULL OR client = $3) AND ($4::text IS NULL OR program = $4) "
              "AND ($5::text IS NULL OR ingestion_name = $5) "
              "AND ($6::text IS NULL OR strpos(lower(filename), lower($6)) > 0) "
              "AND ($7::timestamptz IS NULL OR started_at >= $7) "
              "AND ($8::timestamptz IS NULL OR started_at < $8) ")
SQL_LIST = ("SELECT " + COLUMNS + " FROM uploads " + LIST_WHERE +
            "ORDER BY started_at DESC, id LIMIT $9 OFFSET $10")
SQL_COUNT = "SELECT count(*) FROM uploads " + LIST_WHERE
SQL_FILE_STATUS = ("SELECT " + COLUMNS + " FROM uploads WHERE filename = $1 "
                   "AND ((($2::text IS NULL OR kind = $2) "
                   "AND ($3::text IS NULL OR ingestion_name = $3)) "
                   "OR ($5 AND route = 'national_programs')) "
                   "AND ($4::text IS NULL OR client = $4) "
                   "ORDER BY started_at DESC LIMIT 1")
# Retraction (retraction.py): marked first, then the objects go, then done.
SQL_MARK = ("UPDATE uploads SET status = 'retracting', retracted_by = $2, retracted_at = now() "
            "WHERE id = $1 AND status IN ('uploaded', 'retracting') RETURNING id")
SQL_INCOMPLETE = "UPDATE uploads SET retract_error = $2 WHERE id = $1 AND status = 'retracting'"
SQL_DONE = ("UPDATE uploads SET status = 'retracted', retract_error = NULL "
            "WHERE id = $1 AND status = 'retracting'")
# An upload's duplicates (same client, same bytes: they answered with its objects) follow it.
SQL_MARK_DUPLICATES = ("UPDATE uploads SET status = 'retracting', retracted_by = $2, "
                       "retracted_at = now() WHERE objects->>'duplicate_of' = $1 "
                       "AND status IN ('uploaded', 'retracting')")
SQL_DUPLICATES_DONE = ("UPDATE uploads SET status = 'retracted', retract_error = NULL "
                       "WHERE objects->>'duplicate_of' = $1 AND status = 'retracting'")
SQL_DEDUP_KEY_OF = "SELECT dedup_key FROM uploads WHERE id = $1"


class UploadRecord(TypedDict, total=False):
    """One row of ``uploads`` as the stores return it (timestamps as ISO text): the JSON the API
    shapes its answers from (``ingest.responses``)."""

    id: str
    pid: int
    route: str
    client: str | None
    filename: str | None
    sha256: str | None
    kind: str | None
    program: str | None
    ingestion_name: str | None
    spec_version: int | None
    status: str
    dry_run: bool
    idempotency_key: str | None
    bytes: int | None
    total_rows: int | None
    valid_rows: int | None
    invalid_rows: int | None
    objects: dict[str, Any] | None
    members: list[dict[str, Any]] | None
    errors_sample: list[dict[str, Any]] | None
    error: dict[str, Any] | None
    started_at: str | None
    heartbeat_at: str | None
    finished_at: str | None
    warnings: list[dict[str, Any]] | None
    retracted_at: str | None
    retracted_by: str | None
    retract_error: dict[str, Any] | None
    request_fingerprint: str | None
    http_status: int | None
    read_sha256: str | None
    read_complete: bool | None
    replaced: list[dict[str, Any]] | None
    processing: dict[str, Any] | None


def record_to_json(r: asyncpg.Record | dict[str, Any]) -> UploadRecord:
    out = dict(r)
    for key in ("started_at", "heartbeat_at", "finished_at", "retracted_at"):
        value = out.get(key)
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out  # type: ignore[return-value]  # the columns of COLUMNS


class UploadStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @unique_violation("an upload with this Idempotency-Key is in progress", "upload_in_progress")
    async def create(self, *, upload_id: str, route: str, client: str | None, filename: str | None,
                     kind: str | None, program: str | None, ingestion_name: str | None,
                     dry_run: bool, idempotency_key: str | None, owner: str | None = None,
                     request_fingerprint: str | None = None,
                     spec: tuple[str, str] | None = None) -> int | None:
        """Create the upload's row (``receiving``); the latest version of ``spec`` (kind, name)
        as the database holds it now, None without ``spec``."""
        return await self.pool.fetchval(SQL_INSERT, upload_id, route, client, filename, kind,
                                        program, ingestion_name, dry_run, idempotency_key, owner,
                                        request_fingerprint, *(spec or (None, None)))

    @stored
    async def get(self, upload_id: str) -> UploadRecord | None:
        row = await self.pool.fetchrow(SQL_GET, upload_id)
        return record_to_json(row) if row else None

    @stored
    async def processing_state(self, upload_id: str) -> dict[str, Any] | None:
        """``uploads.processing``: the datasets step's state of this upload (migration 111)."""
        return await self.pool.fetchval("SELECT processing FROM uploads WHERE id = $1", upload_id)

    @stored
    async def by_idempotency_key(self, client: str | None, key: str) -> UploadRecord | None:
        row = await self.pool.fetchrow(SQL_BY_KEY, client, key)
        return record_to_json(row) if row else None

    @contextlib.asynccontextmanager
    async def dedup_locked(self, dedup_key: str, object_keys: Iterable[str] = ()
                           ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction holding the lock of ``dedup_key``: the duplicate check, the publish and
        the ``finish`` done in it are one step for every upload of the same bytes and target,
        whichever process or replica runs it (released at commit or rollback). The locks of
        ``object_keys`` (``object_owners.lock``) are taken with it, in the same round trip."""
        async with transaction(self.pool) as conn:
            ids = sorted(object_owners.lock_ids(object_keys))
            await self._lock_all(conn, [DEDUP_LOCK_SPACE] + [object_owners.LOCK_SPACE] * len(ids),
                                 [_dedup_lock_id(dedup_key), *ids])
            yield conn

    @stored
    async def _lock_all(self, conn: asyncpg.Connection, spaces: list[int], ids: list[int]) -> None:
        await conn.execute(SQL_LOCK_ALL, spaces, ids)

    @stored
    async def find_duplicate(self, conn: asyncpg.Connection, *, dedup_key: str, exclude_id: str,
                             window_s: float) -> UploadRecord | None:
        row = await conn.fetchrow(SQL_DUPLICATE, dedup_key, exclude_id, float(window_s))
        return record_to_json(row) if row else None

    @stored
    async def heartbeat(self, upload_id: str, nbytes: int) -> None:
        await self.pool.execute(SQL_HEARTBEAT, upload_id, nbytes)

    @stored
    async def finish(self, upload_id: str, *, status: str, sha256: str | None, nbytes: int,
                     total_rows: int = 0, valid_rows: int = 0, invalid_rows: int = 0,
                     objects: dict | None = None, members: list | None = None,
                     errors_sample: list | None = None, error: dict | None = None,
                     spec_version: int | None = None, warnings: list | None = None,
                     http_status: int | None = None, read_sha256: str | None = None,
                     read_complete: bool = False, dedup_key: str | None = None,
                     conn: asyncpg.Connection | None = None,
                     claim: Claim | None = None) -> UploadRecord | None:
        """Record the outcome; ``conn`` to do it inside ``dedup_locked``'s transaction. With
        ``claim``, the upload also becomes the owner of the keys it published (what
        ``object_owners.claim`` does, in the same statement). The record as it now is; None
        when the upload was no longer ``receiving`` (recovery failed it meanwhile)."""
        assert status in STATUSES[1:], status
        args = [upload_id, status, sha256, nbytes, total_rows, valid_rows, invalid_rows,
                objects or {}, members, errors_sample or [], error, spec_version, warnings or [],
                http_status, read_sha256, read_complete, dedup_key]
        sql = SQL_FINISH
        if claim is not None:
            sql = SQL_FINISH_CLAIMING
            args += [[key for _, key in claim.parts], [part for part, _ in claim.parts],
                     claim.client, datetime.now(timezone.utc).isoformat()]
        row = await (conn or self.pool).fetchrow(sql, *args)
        return record_to_json(row) if row else None

    @stored
    async def fail_stale(self, older_than_s: float) -> list[str]:
        rows = await self.pool.fetch(SQL_FAIL_STALE, float(older_than_s))
        return [r["id"] for r in rows]

    @stored
    async def fail_orphans(self, host: str, is_dead) -> list[str]:
        """Fail this host's uploads whose receiving process ``is_dead(owner)``."""
        failed = []
        for r in await self.pool.fetch(SQL_RECEIVING_ON_HOST, host.replace("%", r"\%") + ":%"):
            if is_dead(r["owner"]):
                await self.pool.execute(SQL_FAIL_ONE, r["id"])
                failed.append(r["id"])
        return failed

    @stored
    async def list(self, *, status: str | None = None, route: str | None = None,
                   client: str | None = None, limit: int = 50, offset: int = 0,
                   where: UploadFilter | None = None) -> list[UploadRecord]:
        args = (where or UploadFilter(status=status, route=route, client=client)).args()
        rows = await self.pool.fetch(SQL_LIST, *args, limit, offset)
        return [record_to_json(r) for r in rows]

    @stored
    async def count(self, where: UploadFilter) -> int:
        return await self.pool.fetchval(SQL_COUNT, *where.args())

    @stored
    async def file_status(self, filename: str, kind: str | None, ingestion_name: str | None,
                          client: str | None = None, *,
                          or_national: bool = False) -> UploadRecord | None:
        """The latest upload of ``filename`` (of that type and name, when given); only
        ``client``'s own when a client is given. ``or_national``: a national ZIP upload of
        that file name answers too (cQube tracks one under ``event`` and the ZIP's stem)."""
        row = await self.pool.fetchrow(SQL_FILE_STATUS, filename, kind, ingestion_name, client,
                                       or_national)
        return record_to_json(row) if row else None

    async def mark_retracting(self, upload_id: str, by: str, *,
                              with_duplicates: bool = False) -> bool:
        """Mark an uploaded (or half-retracted) upload ``retracting``, and its duplicates with it
        when asked; False if it is neither. Under its duplicate-check lock, so no new duplicate
        of it is recorded meanwhile (``dedup_locked``)."""
        async with transaction(self.pool) as conn:
            return await self._mark(conn, upload_id, by, with_duplicates)

    @stored
    async def _mark(self, conn: asyncpg.Connection, upload_id: str, by: str,
                    with_duplicates: bool) -> bool:
        dedup_key = await conn.fetchval(SQL_DEDUP_KEY_OF, upload_id)
        if dedup_key is not None:
            await conn.execute(SQL_DEDUP_LOCK, _dedup_lock_id(dedup_key))
        if await conn.fetchval(SQL_MARK, upload_id, by) is None:
            return False
        if with_duplicates:
            await conn.execute(SQL_MARK_DUPLICATES, upload_id, by)
        return True

    @stored
    async def retract_incomplete(self, upload_id: str, error: dict[str, Any]) -> None:
        await self.pool.execute(SQL_INCOMPLETE, upload_id, error)

    @stored
    async def retracted(self, upload_id: str) -> None:
        """Done: the upload and the duplicates that were marked with it are ``retracted``."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(SQL_DONE, upload_id)
            await conn.execute(SQL_DUPLICATES_DONE, upload_id)


@dataclass(frozen=True)
class Claim:
    """Keys an upload just published, as ``(part, key)`` (``object_owners.object_parts``), and
    the client it belongs to: ``finish(claim=...)`` makes the upload their owner."""

    client: str | None
    parts: list[tuple[str, str]]


def _dedup_lock_id(dedup_key: str) -> int:
    """32 bits of the key, for the advisory lock of its duplicate check."""
    return int.from_bytes(hashlib.sha256(dedup_key.encode()).digest()[:4], "big", signed=True)


@dataclass(frozen=True)
class UploadFilter:
    """Which uploads a listing shows; None means any. ``filename`` matches a substring, any case;
    ``since`` is inclusive and ``until`` exclusive."""

    status: str | None = None
    route: str | None = None
    client: str | None = None
    program: str | None = None
    ingestion_name: str | None = None
    filename: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def args(self) -> tuple:
        return (self.status, self.route, self.client, self.program, self.ingestion_name,
                self.filename, self.since, self.until)
