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

from .errors import RateLimited
from .stores.login_failures import Count, SharedFailureLimiter


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
