"""The one query cQube's file-status needs that ours does not: a national ZIP is tracked under
``ingestion_type=event`` and ``ingestion_name=<the ZIP's name without .zip>``."""

from __future__ import annotations

from typing import Any

import asyncpg

from .db import stored
from .uploads import COLUMNS, record_to_json

SQL_FILE_STATUS = ("SELECT " + COLUMNS + " FROM uploads WHERE filename = $1 "
                   "AND ((kind = $2 AND ingestion_name = $3) "
                   "OR ($4 AND route = 'national_programs')) "
                   "AND ($5::text IS NULL OR client = $5) "
                   "ORDER BY started_at DESC LIMIT 1")


def zip_stem(filename: str) -> str | None:
    return filename[:-4] if filename.lower().endswith(".zip") else None


@stored
async def cqube_file_status(pool: asyncpg.Pool, filename: str, ingestion_type: str,
                            ingestion_name: str, client: str | None) -> dict[str, Any] | None:
    """The latest upload of ``filename`` for this type and name, or the national ZIP of that
    name when asked as cQube tracks it; only ``client``'s own (None: every client's)."""
    national = ingestion_type == "event" and zip_stem(filename) == ingestion_name
    row = await pool.fetchrow(SQL_FILE_STATUS, filename, ingestion_type, ingestion_name,
                              national, client)
    return record_to_json(row) if row else None
