"""Failed-attempt limiting: a sliding window of failures per key, in bounded memory.

Used by the token endpoint against Basic-credential brute force. Only failures are recorded, so
a client that logs in correctly is never slowed down; once a key has ``max_failures`` failures
inside ``window_s`` it is refused (even with the right secret, or the attempts would go on
teaching the attacker) until the oldest of them leaves the window.

The state is per process: with ``server.workers = N`` an attacker spread over the N processes
gets up to N times the limit, which still turns a brute force into a crawl. Memory is bounded by
``max_keys`` keys of at most ``max_failures`` timestamps each; past that the least recently
failed keys are forgotten first (an attacker spraying keys to push out a victim's counter is
still stopped by the counter of its own IP).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from typing import Callable, Hashable

from .errors import RateLimited

DEFAULT_MAX_KEYS = 10_000


class FailureLimiter:
    """Sliding-window failure counter; ``max_failures = 0`` turns it off."""

    def __init__(self, max_failures: int, window_s: float, *, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_failures < 0 or window_s <= 0 or max_keys < 1:
            raise ValueError("need max_failures >= 0, window_s > 0 and max_keys >= 1")
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, *keys: Hashable) -> float:
        """Seconds until every one of ``keys`` may try again (0.0: allowed now)."""
        if not self.max_failures:
            return 0.0
        now = self._clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_s - now)
        return wait

    def check(self, *keys: Hashable) -> None:
        """Raise ``RateLimited`` (429, with ``retry_after_s``) if any key is over its limit."""
        wait = self.retry_after(*keys)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(f"too many failed attempts: try again in {seconds} s",
                              retry_after_s=seconds)

    def failed(self, *keys: Hashable) -> None:
        """Record one failure for each key."""
        if not self.max_failures:
            return
        now = self._clock()
        for key in keys:
            times = self._recent(key, now)
            if times is None:
                # a deque bounded at the limit: older failures cannot matter any more
                times = self._failures[key] = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def _recent(self, key: Hashable, now: float) -> deque[float] | None:
        """The key's failures still inside the window; a key with none left is dropped."""
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
