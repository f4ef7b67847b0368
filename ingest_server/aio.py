"""Small asyncio helpers shared by the domain modules."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Awaitable, Coroutine, TypeVar

T = TypeVar("T")
_RUNNING: set[asyncio.Future] = set()  # cleanups whose caller was cancelled: kept until done


async def uncancellable(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even if the caller is cancelled meanwhile.

    Cleanup (aborting staged objects, recording a failed upload) must not be cut short by a
    second cancellation — a client that disconnects while the server shuts down, say. The
    cleanup then goes on as a task of its own, and the caller's cancellation is re-raised.
    """
    task = asyncio.ensure_future(aw)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return await asyncio.shield(task)


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[object, object, object]) -> AsyncIterator[None]:
    """Run ``work`` as a task for the duration of the block (a heartbeat, a periodic sweep);
    cancelled and awaited on the way out."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
