"""Failed-login limiting shared by every instance, in PostgreSQL.

``auth.max_failed_attempts`` failures per client id or per address within
``auth.failed_attempts_window_s``, then 429 until they age out, counted in the ``auth_failures``
table, so N replicas do not multiply the limit by N. Only failures are recorded, so a client that
logs in correctly is never slowed down.

Cheap on purpose: failures are counted in buckets of a tenth of the window (one upserted row per
key and bucket, not one row per attempt), a check is one indexed query, and only failures write.
The window therefore slides in steps of a tenth; a key is refused when the buckets still inside
the window hold ``max_failures`` failures, until its oldest bucket leaves the window.
The database clock is the only clock, so instances with skewed clocks still agree.
"""

from __future__ import annotations

import math

import asyncpg

from .db import stored
from .errors import RateLimited

BUCKETS_PER_WINDOW = 10

# The current bucket, floor(now / bucket_s), is computed by the database (its clock is the one
# clock): written out in each statement, with bucket_s as a parameter.
SQL_CHECK = ("SELECT key, min(bucket) AS oldest, extract(epoch FROM clock_timestamp()) AS now_s "
             "FROM auth_failures WHERE key = ANY($1::text[]) "
             "AND bucket > floor(extract(epoch FROM clock_timestamp()) / $2)::bigint - $3 "
             "GROUP BY key HAVING sum(failures) >= $4")
SQL_FAILED = ("INSERT INTO auth_failures (key, bucket, failures) "
              "SELECT k, floor(extract(epoch FROM clock_timestamp()) / $2)::bigint, 1 "
              "FROM unnest($1::text[]) AS k "
              "ON CONFLICT (key, bucket) DO UPDATE SET failures = auth_failures.failures + 1")
SQL_FORGET = ("DELETE FROM auth_failures "
              "WHERE bucket <= floor(extract(epoch FROM clock_timestamp()) / $1)::bigint - $2")


class SharedFailureLimiter:
    """Sliding-window failure counter in PostgreSQL; ``max_failures = 0`` turns it off."""

    def __init__(self, pool: asyncpg.Pool, max_failures: int, window_s: float) -> None:
        self.pool = pool
        self.max_failures = max_failures
        self.window_s = window_s
        self.bucket_s = max(window_s / BUCKETS_PER_WINDOW, 1.0)
        self.buckets = math.ceil(window_s / self.bucket_s)

    @stored
    async def check(self, *keys: str) -> None:
        """Raise ``RateLimited`` (429, with ``retry_after_s``) if any key is over its limit."""
        if not self.max_failures:
            return
        over = await self.pool.fetch(SQL_CHECK, list(keys), self.bucket_s, self.buckets,
                                     self.max_failures)
        if not over:
            return
        # A key is allowed again once its oldest bucket has left the window.
        wait = max((r["oldest"] + self.buckets) * self.bucket_s - float(r["now_s"]) for r in over)
        seconds = max(1, math.ceil(wait))
        raise RateLimited(f"too many failed attempts: try again in {seconds} s",
                          retry_after_s=seconds)

    @stored
    async def failed(self, *keys: str) -> None:
        """Record one failure for each key, and forget the buckets that left the window."""
        if not self.max_failures:
            return
        async with self.pool.acquire() as conn:
            await conn.execute(SQL_FAILED, list(keys), self.bucket_s)
            await conn.execute(SQL_FORGET, self.bucket_s, self.buckets)
