"""Failed-login counts in PostgreSQL (table ``auth_failures``), shared by every instance: the
store behind :mod:`ingest_server.login_limits` (whose docstring says the policy).

Cheap on purpose: failures are counted in buckets of a tenth of the window (one upserted row per
key and bucket, not one row per attempt), a check is one indexed query, and only failures write.
The window therefore slides in steps of a tenth. The database clock is the only clock, so
instances with skewed clocks still agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import asyncpg

from .db import stored

BUCKETS_PER_WINDOW = 10

# The current bucket, floor(now / bucket_s), is computed by the database (its clock is the one
# clock): written out in each statement, with bucket_s as a parameter.
SQL_COUNTS = ("SELECT key, sum(failures) AS failures, min(bucket) AS oldest, "
              "extract(epoch FROM clock_timestamp()) AS now_s "
              "FROM auth_failures WHERE key = ANY($1::text[]) "
              "AND bucket > floor(extract(epoch FROM clock_timestamp()) / $2)::bigint - $3 "
              "GROUP BY key")
SQL_FAILED = ("INSERT INTO auth_failures (key, bucket, failures) "
              "SELECT k, floor(extract(epoch FROM clock_timestamp()) / $2)::bigint, 1 "
              "FROM unnest($1::text[]) AS k "
              "ON CONFLICT (key, bucket) DO UPDATE SET failures = auth_failures.failures + 1")
SQL_FORGET = ("DELETE FROM auth_failures "
              "WHERE bucket <= floor(extract(epoch FROM clock_timestamp()) / $1)::bigint - $2")


@dataclass(frozen=True)
class Count:
    failures: int
    retry_after_s: int  # when the oldest failure still counted leaves the window


class SharedFailureLimiter:
    """Sliding-window failure counts per key in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, window_s: float) -> None:
        self.pool = pool
        self.window_s = window_s
        self.bucket_s = max(window_s / BUCKETS_PER_WINDOW, 1.0)
        self.buckets = math.ceil(window_s / self.bucket_s)

    @stored
    async def counts(self, *keys: str) -> dict[str, Count]:
        """The failures of each key still inside the window (keys without any are left out)."""
        rows = await self.pool.fetch(SQL_COUNTS, list(keys), self.bucket_s, self.buckets)
        return {r["key"]: Count(int(r["failures"]), max(1, math.ceil(
                    (r["oldest"] + self.buckets) * self.bucket_s - float(r["now_s"]))))
                for r in rows}

    @stored
    async def failed(self, *keys: str) -> None:
        """Record one failure for each key, and forget the buckets that left the window."""
        async with self.pool.acquire() as conn:
            await conn.execute(SQL_FAILED, list(keys), self.bucket_s)
            await conn.execute(SQL_FORGET, self.bucket_s, self.buckets)
