"""Waiting for a condition with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio


async def until(predicate, timeout_s: float = 30.0, every_s: float = 0.02):
    """Wait for ``predicate()`` (sync or async) to be truthy; return its value, or raise
    ``TimeoutError`` after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(every_s)
