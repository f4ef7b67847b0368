"""Run ``process_chunk`` over a stream of chunks, results in order, memory flat.

``ChunkPool`` uses worker processes so one upload can use every core; ``InlineRunner`` has the
same interface and stays in this process, for small files where starting work in another
process costs more than it saves. Both pull chunks from the producer only while fewer than
``max_in_flight`` are pending, so back-pressure reaches the network reader.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ingest_server.csvstream.checkers import ensure_checker
from ingest_server.csvstream.chunker import Chunk
from ingest_server.csvstream.jobs import CheckerFactory, init_worker, ping, run_job
from ingest_server.csvstream.worker import DEFAULT_SAMPLE_LIMIT, ChunkResult, process_chunk
from ingest_server.errors import IngestError

Chunks = AsyncIterable[Chunk] | Iterable[Chunk]


async def _aiter(chunks: Chunks) -> AsyncIterator[Chunk]:
    """One async interface over both kinds of source. Closing it closes an async source too,
    so a consumer that stops early also stops the network reader behind it."""
    if not isinstance(chunks, AsyncIterable):
        for chunk in chunks:
            yield chunk
        return
    source = aiter(chunks)
    try:
        async for chunk in source:
            yield chunk
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


async def _ordered(chunks: Chunks, submit: Callable[[Chunk], asyncio.Future[ChunkResult]],
                   max_in_flight: int) -> AsyncIterator[ChunkResult]:
    pending: deque[asyncio.Future[ChunkResult]] = deque()
    source = _aiter(chunks)
    exhausted = False
    try:
        while True:
            while pending and pending[0].done():
                yield pending.popleft().result()
            if not exhausted and len(pending) < max_in_flight:
                try:
                    chunk = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                else:
                    pending.append(submit(chunk))
                continue
            if not pending:
                return
            result = await pending[0]
            pending.popleft()
            yield result
    finally:
        for fut in pending:
            fut.cancel()
        await source.aclose()


class ChunkPool:
    """A process pool for chunks. Start method ``spawn`` (or ``forkserver``), never ``fork``:
    the parent runs an event loop and threads, which ``fork`` would copy mid-flight.

    A crashed worker fails the uploads using it with ``worker_crashed`` (HTTP 500) instead of
    hanging, and the next ``map_ordered`` gets a fresh executor.
    """

    def __init__(self, workers: int | None = None, *, max_in_flight: int | None = None,
                 start_method: str = "spawn",
                 sample_limit: int = DEFAULT_SAMPLE_LIMIT) -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be 'spawn' or 'forkserver'")
        self.workers = workers or os.cpu_count() or 1
        self.max_in_flight = max_in_flight or 2 * self.workers
        self.sample_limit = sample_limit
        self._mp_context = multiprocessing.get_context(start_method)
        self._executor: ProcessPoolExecutor | None = None

    def _get_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=self._mp_context,
                                                 initializer=init_worker)
        return self._executor

    def _discard(self, executor: Executor) -> None:
        if self._executor is executor:
            self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    async def start(self) -> None:
        """Start the workers now, so the first upload does not pay for process start-up."""
        executor = self._get_executor()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(executor, ping)
                               for _ in range(self.workers)))

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def map_ordered(self, chunks: Chunks, ctx_key: str,
                          spec: CheckerFactory) -> AsyncIterator[ChunkResult]:
        """Results of ``process_chunk`` for every chunk, in ``seq`` order."""
        executor = self._get_executor()

        def submit(chunk: Chunk) -> asyncio.Future[ChunkResult]:
            return asyncio.wrap_future(executor.submit(run_job, chunk, ctx_key, spec,
                                                       self.sample_limit))

        results = _ordered(chunks, submit, self.max_in_flight)
        try:
            async for result in results:
                yield result
        except BrokenProcessPool as exc:
            self._discard(executor)
            raise IngestError("a CSV worker process died while checking this file",
                              code="worker_crashed", status=500) from exc
        finally:
            await results.aclose()  # now, not at garbage collection: cancels pending jobs


class InlineRunner:
    """``ChunkPool``'s interface, in this process. Small chunks run right in the loop thread
    (a thread hop costs more than they do); bigger ones in ``asyncio.to_thread`` so the loop
    keeps serving other requests."""

    def __init__(self, *, sample_limit: int = DEFAULT_SAMPLE_LIMIT,
                 thread_above_bytes: int = 64 << 10) -> None:
        self.sample_limit = sample_limit
        self.thread_above_bytes = thread_above_bytes

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def map_ordered(self, chunks: Chunks, ctx_key: str,
                          spec: CheckerFactory) -> AsyncIterator[ChunkResult]:
        ensure_checker(ctx_key, spec)
        source = _aiter(chunks)
        try:
            async for chunk in source:
                if len(chunk.data) > self.thread_above_bytes:
                    yield await asyncio.to_thread(process_chunk, chunk, ctx_key,
                                                  sample_limit=self.sample_limit)
                else:
                    yield process_chunk(chunk, ctx_key, sample_limit=self.sample_limit)
        finally:
            await source.aclose()
