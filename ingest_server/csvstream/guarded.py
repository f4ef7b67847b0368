"""Chunks checked in worker processes that can be killed: user-supplied patterns, time-bounded.

A spec's ``regex`` (Cerberus) or ``pattern`` (cQube) is a regular expression from a client,
and Python's ``re`` backtracks: ``^(a+)+$`` against 26 ``a``s and a ``!`` takes seconds, each
more character doubles it, and ``re`` holds the GIL all along (a thread would freeze the event
loop just the same). Such files are checked here, in processes of their own (``workerproc``):
every chunk has ``deadline_s`` to finish, and a worker that overruns it is killed (SIGKILL) and
replaced. The upload gets 400 ``pattern_timeout`` naming the chunk's lines, at once, instead of
a worker busy for minutes; other uploads' chunks run in the other workers meanwhile.

Each worker takes one job at a time, so a killed worker takes only its own chunk with it. Its
process is started (and has answered a first job) before the slot takes jobs, so the deadline
never counts process start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from ingest_server.csvstream.chunker import Chunk
from ingest_server.csvstream.jobs import CheckerFactory, run_job
from ingest_server.csvstream.pool import Chunks, _ordered
from ingest_server.csvstream.worker import DEFAULT_SAMPLE_LIMIT, ChunkResult
from ingest_server.csvstream.workerproc import WorkerDied, WorkerProcess
from ingest_server.errors import FileRejected, IngestError

log = logging.getLogger("ingest_server.csvstream")


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # a killed job's WorkerDied is expected: not "never retrieved"


class GuardedPool:
    """``ChunkPool``'s interface; every chunk bounded by ``deadline_s`` of worker time."""

    def __init__(self, workers: int, *, deadline_s: float,
                 sample_limit: int = DEFAULT_SAMPLE_LIMIT) -> None:
        self.workers = max(1, workers)
        self.deadline_s = deadline_s
        self.sample_limit = sample_limit
        self.max_in_flight = 2 * self.workers
        self._idle: asyncio.Queue[WorkerProcess] | None = None
        self._busy: set[WorkerProcess] = set()
        self._starting: set[asyncio.Task] = set()
        self.killed = 0  # workers killed for overrunning (or abandoned mid-job): for tests, metrics

    def _spawn(self) -> None:
        """Start a worker; it joins the idle queue once its process answers."""
        async def started() -> None:
            worker = WorkerProcess()
            try:
                await worker.ready
            except BaseException:
                worker.kill()
                raise
            assert self._idle is not None
            self._idle.put_nowait(worker)

        task = asyncio.create_task(started())
        self._starting.add(task)
        task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a pattern-check worker did not start: %s", task.exception())
            if self._idle is not None:
                self._spawn()  # keep the pool at strength; the next job waits for it

    async def start(self) -> None:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.workers):
                self._spawn()

    async def close(self) -> None:
        for task in list(self._starting):
            task.cancel()
        for task in list(self._starting):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        busy, idle = list(self._busy), []
        while self._idle is not None and not self._idle.empty():
            idle.append(self._idle.get_nowait())
        self._idle, self._busy = None, set()
        for worker in busy:  # still checking at shutdown: a pattern may not end for minutes
            worker.kill()
        await asyncio.gather(*(worker.close() for worker in idle))

    def _replace(self, worker: WorkerProcess) -> None:
        self._busy.discard(worker)
        worker.kill()
        self.killed += 1
        if self._idle is not None:
            self._spawn()

    def _release(self, worker: WorkerProcess) -> None:
        self._busy.discard(worker)
        if self._idle is not None:
            self._idle.put_nowait(worker)

    async def _run(self, chunk: Chunk, ctx_key: str, spec: CheckerFactory,
                   sample_limit: int) -> ChunkResult:
        await self.start()
        assert self._idle is not None
        worker = await self._idle.get()
        self._busy.add(worker)
        job = worker.run(run_job, chunk, ctx_key, spec, sample_limit)
        job.add_done_callback(_retrieve)
        try:
            result = await asyncio.wait_for(asyncio.shield(job), self.deadline_s)
        except TimeoutError:
            self._replace(worker)
            last = chunk.first_line + max(chunk.lines, 1) - 1
            log.warning("a pattern check overran %.1f s on lines %d-%d: worker %s killed",
                        self.deadline_s, chunk.first_line, last, worker.pid)
            raise FileRejected(
                f"checking lines {chunk.first_line}-{last} against the spec's patterns took "
                f"more than {self.deadline_s:g} s and was stopped: a pattern with nested "
                "repetition such as (a+)+ can take exponential time on some values; simplify "
                "the spec's regex/pattern", code="pattern_timeout", first_line=chunk.first_line,
                last_line=last, timeout_s=self.deadline_s) from None
        except asyncio.CancelledError:
            if job.done():
                self._release(worker)
            else:  # abandoned mid-job (the upload failed or the client left): never let it run on
                self._replace(worker)
            raise
        except WorkerDied as exc:
            self._replace(worker)
            raise IngestError("a CSV worker process died while checking this file",
                              code="worker_crashed", status=500) from exc
        except BaseException:
            self._release(worker)  # the job raised: the worker itself is fine
            raise
        self._release(worker)
        return result

    async def map_ordered(self, chunks: Chunks, ctx_key: str, spec: CheckerFactory, *,
                          sample_limit: int | None = None) -> AsyncIterator[ChunkResult]:
        """Results of ``process_chunk`` for every chunk, in ``seq`` order."""
        limit = self.sample_limit if sample_limit is None else sample_limit

        def submit(chunk: Chunk) -> asyncio.Future[ChunkResult]:
            return asyncio.ensure_future(self._run(chunk, ctx_key, spec, limit))

        results = _ordered(chunks, submit, self.max_in_flight)
        try:
            async for result in results:
                yield result
        finally:
            await results.aclose()
