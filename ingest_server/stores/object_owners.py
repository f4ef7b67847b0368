"""Which upload an object key belongs to now (table ``object_owners``).

Native keys carry the upload id, so each belongs to one upload for ever. In ``storage.layout =
"cqube"`` a later upload of the same name on the same day replaces the earlier one's object
under the same key (cQube's meaning): the key then belongs to the later upload, and the earlier
upload's record lists it in ``replaced`` — naming the replacing upload only when both belong to
the same client (another client's upload id is not its business). A retraction deletes, and a
download streams, only a key its upload still owns. A retracted upload keeps its keys (their
objects are gone): an earlier upload they replaced never gets them back, so it neither offers
nor streams what is not its own.

Every publish, retraction and ownership check of a key holds that key's advisory lock in its
transaction, so "who owns it" and "what the store holds" change together, whichever process or
replica does it. Locks are taken in key order (no deadlock between two uploads of two keys).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Iterable

import asyncpg

from .db import stored

LOCK_SPACE = 1229210434  # the advisory locks' namespace
SQL_LOCK = "SELECT pg_advisory_xact_lock(1229210434, $1)"
SQL_OWNER = "SELECT upload_id, client FROM object_owners WHERE key = $1"
SQL_CLAIM = ("INSERT INTO object_owners (key, upload_id, client) VALUES ($1, $2, $3) "
             "ON CONFLICT (key) DO UPDATE SET upload_id = EXCLUDED.upload_id, "
             "client = EXCLUDED.client")
SQL_REPLACED = ("UPDATE uploads SET replaced = coalesce(replaced, '[]'::jsonb) || $2::jsonb "
                "WHERE id = $1 AND status <> 'retracted'")
SQL_OWNERS = "SELECT key, upload_id FROM object_owners WHERE key = ANY($1::text[])"


def object_parts(objects: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(part, key) of each object named in an upload's ``objects`` (``valid``/``errors``, a key
    or a list of keys for a national ZIP), without repeats."""
    out: list[tuple[str, str]] = []
    for part in ("valid", "errors"):
        value = (objects or {}).get(part)
        for key in value if isinstance(value, list) else [value]:
            if isinstance(key, str) and key and all(key != k for _, k in out):
                out.append((part, key))
    return out


def publisher(record: dict[str, Any]) -> str:
    """The upload that wrote a record's objects: a duplicate's are its original's."""
    return (record.get("objects") or {}).get("duplicate_of") or record["id"]


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big", signed=True)


def lock_ids(keys: Iterable[str]) -> set[int]:
    """The advisory lock ids (in ``LOCK_SPACE``) of ``keys``; take them in sorted order."""
    return {_lock_id(k) for k in keys}


@stored
async def lock(conn: asyncpg.Connection, keys: Iterable[str]) -> None:
    """Hold the advisory lock of every key until ``conn``'s transaction ends."""
    for lock_id in sorted(lock_ids(keys)):
        await conn.execute(SQL_LOCK, lock_id)


@stored
async def claim(conn: asyncpg.Connection, upload_id: str, client: str | None,
                parts: list[tuple[str, str]]) -> None:
    """Make ``upload_id`` the owner of the keys it just published (under :func:`lock`); an
    earlier owner's record is told which of its objects were replaced."""
    at = datetime.now(timezone.utc).isoformat()
    for part, key in parts:
        before = await conn.fetchrow(SQL_OWNER, key)
        await conn.execute(SQL_CLAIM, key, upload_id, client)
        if before is not None and before["upload_id"] != upload_id:
            same_client = before["client"] is not None and before["client"] == client
            await conn.execute(SQL_REPLACED, before["upload_id"], [{
                "part": part, "key": key, "at": at,
                "by_upload_id": upload_id if same_client else None,
                "by_same_client": same_client}])


@stored
async def foreign(conn: asyncpg.Connection | asyncpg.Pool, owner: str,
                  keys: list[str]) -> set[str]:
    """Those of ``keys`` that now belong to another upload than ``owner``. A key without an
    owner row (nothing published it since ownership is recorded) is taken as still its own."""
    rows = await conn.fetch(SQL_OWNERS, keys)
    return {r["key"] for r in rows if r["upload_id"] != owner}
