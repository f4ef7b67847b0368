"""Failed-login limiting shared by every instance, in PostgreSQL.

The policy (:class:`LoginLimits`), chosen so that brute force stays slow while nobody can lock a
client out by knowing its id:

- per **(client id, address)** pair: ``auth.max_failed_attempts`` failures within
  ``auth.failed_attempts_window_s``, then 429 for that pair only. The same client from another
  address is not affected, so a stranger's wrong guesses never lock the real client out.
- per **address**: ``auth.max_failed_attempts_per_address`` failures whatever the client id (a
  guesser spraying many ids, malformed credentials), then 429 for that address.
- per **client id**, from all addresses together: past ``auth.slow_down_after_failures``
  failures every Basic attempt for that id waits ``auth.slow_down_s`` before it is checked,
  right secret or wrong. A guess spread over many addresses is slowed, never a refusal: the right
  secret from anywhere still gets its token (a little later while the id is under attack).

Failures are counted in the ``auth_failures`` table, so N replicas do not multiply the limits by
N. Only failures are recorded, so a client that logs in correctly is never slowed by its own
successes. Cheap on purpose: failures are counted in buckets of a tenth of the window (one
upserted row per key and bucket, not one row per attempt), a check is one indexed query, and only
failures write. The window therefore slides in steps of a tenth; a key is refused when the
buckets still inside the window hold its limit, until its oldest bucket leaves the window.
The database clock is the only clock, so instances with skewed clocks still agree.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import asyncpg

from .db import stored
from .errors import RateLimited

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


def address_key(address: str) -> str:
    return "ip:" + address


def pair_key(login: str, address: str) -> str:
    return f"pair:{login}@{address}"


def client_key(login: str) -> str:
    return "client:" + login


class LoginLimits:
    """The policy of the module docstring; every limit ``0`` turns that part off."""

    def __init__(self, limiter: SharedFailureLimiter, *, per_pair: int, per_address: int,
                 slow_down_after: int, slow_down_s: float) -> None:
        self.limiter = limiter
        self.limits = {"pair:": per_pair, "ip:": per_address}
        self.slow_down_after = slow_down_after
        self.slow_down_s = slow_down_s

    @property
    def active(self) -> bool:
        return any(self.limits.values()) or bool(self.slow_down_after)

    async def check_address(self, address: str) -> None:
        """Before the credentials are parsed: malformed ones count against the address."""
        if self.active:
            self._refuse_over(await self.limiter.counts(address_key(address)))

    async def check_login(self, login: str, address: str) -> None:
        """Before the secret is checked: 429 for a blocked pair or address; a wait for an id
        under attack from many addresses."""
        if not self.active:
            return
        counts = await self.limiter.counts(address_key(address), pair_key(login, address),
                                           client_key(login))
        self._refuse_over(counts)
        spread = counts.get(client_key(login))
        if self.slow_down_after and spread and spread.failures >= self.slow_down_after:
            await asyncio.sleep(self.slow_down_s)

    async def failed(self, address: str, login: str | None = None) -> None:
        if not self.active:
            return
        keys = [address_key(address)]
        if login is not None:
            keys += [pair_key(login, address), client_key(login)]
        await self.limiter.failed(*keys)

    def _refuse_over(self, counts: dict[str, Count]) -> None:
        over = [c.retry_after_s for key, c in counts.items()
                for prefix, limit in self.limits.items()
                if limit and key.startswith(prefix) and c.failures >= limit]
        if over:
            seconds = max(over)
            raise RateLimited(f"too many failed attempts: try again in {seconds} s",
                              retry_after_s=seconds)
