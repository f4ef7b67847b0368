"""Reading a member from async code: the blocking reader runs in its own thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator

from .directory import ZipMember
from .inflate import CHUNK_SIZE, iter_member
from .limits import ByteBudget, ZipLimits

_END = object()


async def aiter_member(path: str | os.PathLike[str], member: ZipMember, limits: ZipLimits,
                       budget: ByteBudget | None = None, chunk_size: int = CHUNK_SIZE,
                       queue_size: int = 4) -> AsyncIterator[bytes]:
    """``iter_member`` without blocking the event loop; exceptions reach the consumer.

    A dedicated thread rather than ``asyncio.to_thread`` per chunk, so that decompression
    runs ahead while the consumer validates and writes, instead of taking turns with it.
    At most ``queue_size`` chunks wait for the consumer, plus the one being produced.

    The thread stops when this generator is closed: at once if the consumer is cancelled
    while awaiting it, or via ``contextlib.aclosing`` if the consumer may stop between
    chunks; otherwise when the loop's async-generator finalizer collects it.
    """
    if queue_size < 1:
        raise ValueError("queue_size must be at least 1")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    # The bound lives in a thread-side semaphore: the producer must block in its own thread,
    # and the consumer can always wake it to tell it to stop.
    slots = threading.Semaphore(queue_size)
    stop = threading.Event()

    def send(item: object, error: BaseException | None = None) -> None:
        if not stop.is_set():
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (item, error))
            except RuntimeError:
                pass  # the loop is closed: nobody is left to read this

    def produce() -> None:
        chunks = iter_member(path, member, limits, chunk_size=chunk_size, budget=budget)
        try:
            for chunk in chunks:
                slots.acquire()
                if stop.is_set():
                    return
                send(chunk)
            send(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            send(None, exc)
        finally:
            chunks.close()  # closes the archive now, not whenever the generator is collected

    thread = threading.Thread(target=produce, name="ziparchive:%s" % member.name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                return
            slots.release()
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        slots.release()  # a producer waiting for room wakes up, sees `stop` and returns
