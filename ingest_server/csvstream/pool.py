"""Run ``process_chunk`` over a stream of chunks, results in order, memory flat.

``ChunkPool`` uses worker processes (``workerproc``) so one upload can use every core;
``InlineRunner`` has the same interface and stays in this process, for small files where
starting work in another process costs more than it saves. Both pull chunks from the producer only while fewer than
``max_in_flight`` are pending, so back-pressure reaches the network reader.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from ingest_server.csvstream.checkers import ensure_checker
from ingest_server.csvstream.chunker import Chunk
from ingest_server.csvstream.jobs import CheckerFactory, run_job
from ingest_server.csvstream.worker import DEFAULT_SAMPLE_LIMIT, ChunkResult, process_chunk
from ingest_server.csvstream.workerproc import WorkerDied, WorkerProcess
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
    """Worker processes for chunks (``workerproc``): each job goes to the worker with the fewest
    jobs waiting, so the next chunk is already in a worker's pipe when it finishes one.

    A crashed worker fails the uploads using it with ``worker_crashed`` (HTTP 500) instead of
    hanging, and is replaced for the next job.
    """

    def __init__(self, workers: int | None = None, *, max_in_flight: int | None = None,
                 sample_limit: int = DEFAULT_SAMPLE_LIMIT) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.max_in_flight = max_in_flight or 2 * self.workers
        self.sample_limit = sample_limit
        self._procs: list[WorkerProcess] = []

    def _live(self) -> list[WorkerProcess]:
        """The workers, a dead one (or one of an earlier event loop) replaced."""
        procs = self._procs
        for i, worker in enumerate(procs):
            if not worker.usable():
                worker.kill()
                procs[i] = WorkerProcess()
        while len(procs) < self.workers:
            procs.append(WorkerProcess())
        return procs

    async def start(self) -> None:
        """Start the workers now, so the first upload does not pay for process start-up."""
        await asyncio.gather(*(w.ready for w in self._live()))

    async def close(self) -> None:
        procs, self._procs = self._procs, []
        await asyncio.gather(*(w.close() for w in procs))

    async def map_ordered(self, chunks: Chunks, ctx_key: str,
                          spec: CheckerFactory) -> AsyncIterator[ChunkResult]:
        """Results of ``process_chunk`` for every chunk, in ``seq`` order."""

        def submit(chunk: Chunk) -> asyncio.Future[ChunkResult]:
            worker = min(self._live(), key=_load)
            return worker.run(run_job, chunk, ctx_key, spec, self.sample_limit)

        results = _ordered(chunks, submit, self.max_in_flight)
        try:
            async for result in results:
                yield result
        except WorkerDied as exc:
            raise IngestError("a CSV worker process died while checking this file",
                              code="worker_crashed", status=500) from exc
        finally:
            await results.aclose()  # now, not at garbage collection: cancels pending jobs


def _load(worker: WorkerProcess) -> int:
    return worker.load


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
