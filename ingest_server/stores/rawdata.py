"""The emission files of today (cQube's ``getRawData``), found from the upload records: only
published objects of national uploads that are still ``uploaded``, whatever ``storage.layout``
named them. The links to them are signed by :mod:`ingest_server.rawdata`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from .db import stored
from .object_owners import foreign, object_parts, publisher

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
