"""Download links for the latest emission files of a programme (cQube's ``getRawData``).

A state instance asks the national one for the files a national programme landed today. The
files are found from the upload records (whatever ``storage.layout`` named them), so only
published objects of uploads that are still ``uploaded`` are offered. On S3 the links are
presigned GET URLs; on local storage they point at our own ``GET /api/ingestion/raw``, signed
with an HMAC of the key and the expiry time, and refused once expired.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from .db import stored
from .errors import Forbidden
from .object_owners import foreign, object_parts, publisher

URL_TTL_S = 3600
SQL_EMISSION = ("SELECT id, members, objects FROM uploads WHERE route = 'national_programs' "
                "AND status = 'uploaded' AND NOT dry_run AND started_at >= $1 "
                "ORDER BY started_at")


def today_start(timezone: str = "UTC", now: datetime | None = None) -> datetime:
    """Midnight of today in ``timezone`` (``storage.timezone``: the zone of the cqube layout's
    date folders; UTC by default, as the native layout's)."""
    zone = ZoneInfo(timezone)
    local = (now or datetime.now(zone)).astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@stored
async def emission_keys(pool: asyncpg.Pool, programs: list[str],
                        timezone: str = "UTC") -> dict[str, list[str]]:
    """Per programme, the valid objects national uploads landed for it today (oldest first)."""
    found: dict[str, list[str]] = {p: [] for p in programs}
    rows = await pool.fetch(SQL_EMISSION, today_start(timezone))
    for row in rows:
        # A key a later upload replaced (the cqube layout) is offered once, as the later one's.
        keys = [k for _, k in object_parts(row["objects"])]
        theirs = await foreign(pool, publisher(dict(row)), keys)
        for member in row["members"] or []:
            key = (member.get("objects") or {}).get("valid")
            if member.get("name") in found and key and key not in theirs \
                    and key not in found[member["name"]]:
                found[member["name"]].append(key)
    return found


def _mac(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode("utf-8"), hashlib.sha256).hexdigest()


def sign(secret: bytes, key: str, ttl_s: int = URL_TTL_S,
         now: float | None = None) -> dict[str, Any]:
    """The query of a signed link to ``key``, valid for ``ttl_s`` seconds."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return {"key": key, "expires": str(expires), "signature": _mac(secret, key, expires)}


def verify(secret: bytes, key: str, expires: str, signature: str,
           now: float | None = None) -> None:
    """Raise Forbidden unless the link was signed by us for ``key`` and has not expired."""
    try:
        when = int(expires)
    except ValueError:
        raise Forbidden("the link is invalid", code="invalid_signature") from None
    if not hmac.compare_digest(_mac(secret, key, when), signature):
        raise Forbidden("the link is invalid", code="invalid_signature")
    if when < (time.time() if now is None else now):
        raise Forbidden("the link has expired", code="link_expired", expired_at=when)
