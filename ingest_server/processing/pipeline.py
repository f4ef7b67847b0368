"""Datasets after publishing (DESIGN.md §12): a landed event upload's contribution goes into its
programme's dataset tables, exactly once; retraction takes it out; a programme can be rebuilt
from its landed valid files.

The partial aggregates are computed while the upload streams: the validation workers aggregate
each chunk's valid rows (``rowcheck.DatasetSummary``) and the upload merges them
(``aggregate.Aggregator``). ``start`` then applies them in the background, one transaction per
table, two tables at a time (``contributions``); the answer waits for that at most
``processing.answer_wait_s``.
A job without them — a retry, a job resumed after a restart or taken over from a dead instance,
a rebuild — reads the upload's landed valid object back in one streaming pass instead (in a
thread; memory bounded by the number of groups). Jobs, their retries and leases are in the
service database (``jobs``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import time
from typing import Any, AsyncIterator, Callable, Iterator

import asyncpg

from ..config import ProcessingConfig
from ..errors import IngestError
from . import contributions as contrib
from .aggregate import Aggregator, Groups
from .dataset_spec import write_spec_rows
from .datasets import DatasetTable, plan_tables, unique_tables
from .dates import parse_cqube_date
from .grammars import Program, parse_program
from .jobs import JobStore
from .registry import GrammarRegistry

log = logging.getLogger("ingest_server.processing")
Reader = Callable[[str], AsyncIterator[bytes]]


class _Pull(io.RawIOBase):
    """A blocking byte stream over an async iterator, for a worker thread (pulls one chunk at a
    time through the event loop)."""

    def __init__(self, source: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._source, self._loop, self._buf = source, loop, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = asyncio.run_coroutine_threadsafe(
                    self._source.__anext__(), self._loop).result()
            except StopAsyncIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def aggregate_file(tables: list[DatasetTable], source: AsyncIterator[bytes],
                   loop: asyncio.AbstractEventLoop, *, quote: str, week: str,
                   metric: str) -> Groups:
    """Blocking (run it in a thread): the partial aggregates of one landed valid CSV."""
    text = io.TextIOWrapper(io.BufferedReader(_Pull(source, loop), 1 << 20), encoding="utf-8-sig",
                            newline="")
    reader = csv.reader(text, quotechar=quote)
    header = next(reader, None)
    if header is None:
        return {}
    agg = Aggregator(tables, header, parse_date=parse_cqube_date, week=week, metric=metric)
    agg.add_rows(row for row in reader if row)
    return agg.all_table_groups()


async def _in_thread(parts: Iterator[Groups]) -> AsyncIterator[Groups]:
    """The parts of a blocking iterator, each computed in a thread."""
    while (part := await asyncio.to_thread(next, parts, None)) is not None:
        yield part


class DatasetProcessor:
    def __init__(self, *, config: ProcessingConfig, registry: GrammarRegistry,
                 pool: asyncpg.Pool, jobs: JobStore, read: Reader, quote: str) -> None:
        self.config, self.registry, self.pool = config, registry, pool
        self.jobs, self.read, self.quote = jobs, read, quote
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task] = set()
        self._ddl_done = False

    # -- what a programme yields -----------------------------------------------------------

    async def program(self, name: str) -> Program | None:
        stored = await self.registry.store.latest("program", "", name)
        return None if stored is None else parse_program(name, json.loads(stored.body))

    async def program_tables(self, name: str) -> tuple[Program | None, list[Any],
                                                       list[DatasetTable]]:
        """The programme, its event grammars and its dataset tables (cQube's order: events by
        name, single-dimension tables first; names de-duplicated, first wins)."""
        program = await self.program(name)
        if program is None:
            return None, [], []
        grammars = []
        for stored in await self.registry.store.list_latest("event"):
            if stored.program == name:
                g = await self.registry.event(name, stored.name)
                if g is not None:
                    grammars.append(g)
        planned = [plan_tables(g, program) for g in grammars]
        tables = unique_tables([t for p in planned for t in p if not t.compound]
                               + [t for p in planned for t in p if t.compound])
        return program, grammars, tables

    async def ensure_program(self, name: str) -> list[DatasetTable]:
        """Create the programme's dataset tables and their spec rows (on registration)."""
        program, grammars, tables = await self.program_tables(name)
        if program is None or not tables:
            return tables
        async with self.pool.acquire() as conn, conn.transaction():
            await contrib.lock_program(conn, name)
            await contrib.ensure_bookkeeping(conn)
            await contrib.ensure_tables(conn, tables)
            await write_spec_rows(conn, grammars, program.namespace, tables)
        return tables

    # -- one upload --------------------------------------------------------------------------

    async def enqueue(self, body: dict[str, Any]) -> bool:
        """After an upload concluded: a job if it landed an event file of a programme."""
        objects = body.get("objects") or {}
        if (body.get("ingestion_type") != "event" or body.get("status") != "uploaded"
                or body.get("dry_run") or not isinstance(objects.get("valid"), str)
                or objects.get("duplicate_of") or not body.get("program_name")):
            return False
        await self.jobs.enqueue(body["upload_id"], body["program_name"], body["ingestion_name"])
        return True

    async def start(self, upload_id: str, summary: Aggregator | None = None,
                    valid_rows: int | None = None) -> None:
        """Process a job just enqueued, in the background, with the partial aggregates its upload
        computed while it streamed (``summary``, if they cover all ``valid_rows``); wait for it
        at most ``processing.answer_wait_s`` (then it goes on, and the state says ``pending``).
        """
        if summary is not None and summary.rows != valid_rows:
            log.warning("upload %s: partial aggregates of %s rows for %s valid rows: the landed "
                        "file is read instead", upload_id, summary.rows, valid_rows)
            summary = None
        task = asyncio.create_task(self.run(upload_id, summary))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await asyncio.wait({task}, timeout=self.config.answer_wait_s)

    async def close(self) -> None:
        """At shutdown: stop the jobs running here and free their leases, so that another
        instance (or this one, restarted) takes them at once; they read the landed files."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        try:
            await self.jobs.release_mine()
        except Exception as e:  # the database away: the leases then run out on their own
            log.warning("freeing the processing leases at shutdown: %s: %s", type(e).__name__, e)

    async def run(self, upload_id: str, summary: Aggregator | None = None) -> bool:
        """Process one job if its lease can be taken; whether it was taken."""
        job = await self.jobs.claim(upload_id)
        if job is None:
            return False
        keep = asyncio.create_task(self._keep_lease(upload_id))
        started = time.monotonic()
        try:
            applied = await self.process(upload_id, job["program"], job["event"], summary)
        except Exception as e:  # recorded and retried; never lost
            error = (e.to_json()["error"] if isinstance(e, IngestError)
                     else {"code": "processing_failed", "message": f"{type(e).__name__}: {e}"})
            log.error("processing upload %s failed (attempt %s): %s", upload_id, job["attempts"],
                      error["message"])
            await self.jobs.failed(upload_id, error, job["attempts"])
            return True
        finally:
            keep.cancel()
            await asyncio.gather(keep, return_exceptions=True)
        await self.jobs.done(upload_id, applied.tables, applied.groups)
        log.info("upload %s: %s groups in %s dataset tables in %.1f s (%s)", upload_id,
                 applied.groups, applied.tables, time.monotonic() - started,
                 "aggregated while it streamed" if summary is not None
                 else "aggregated from the landed file")
        return True

    async def _keep_lease(self, upload_id: str) -> None:
        while True:
            await asyncio.sleep(self.jobs.lease_s / 3)
            try:
                await self.jobs.renew(upload_id)
            except Exception as e:  # the next renewal may succeed; the lease is a guard only
                log.warning("renewing the processing lease of %s: %s", upload_id, e)

    async def process(self, upload_id: str, program_name: str, event: str,
                      summary: Aggregator | None = None) -> contrib.Applied:
        program, grammars, tables = await self.program_tables(program_name)
        if program is None:
            raise IngestError(f"programme '{program_name}' is not registered "
                              "(PUT /api/processing/programs/{program})",
                              code="program_not_registered", status=404)
        mine = [t for t in tables if t.event == event]
        record = await self.registry.store.pool.fetchrow(
            "SELECT objects, status FROM uploads WHERE id = $1", upload_id)
        objects = record["objects"] if record else None
        if isinstance(objects, str):
            objects = json.loads(objects)
        key = (objects or {}).get("valid")
        if record is None or record["status"] != "uploaded" or not isinstance(key, str):
            return contrib.Applied(0, 0, already=True)  # retracted meanwhile: nothing to add
        async with self.pool.acquire() as conn:  # created at registration; else here
            missing = not await conn.fetchval(
                "SELECT bool_and(to_regclass('datasets.' || quote_ident(t)) IS NOT NULL) "
                "FROM unnest($1::text[]) t", [t.physical for t in mine])
        if missing:
            await self.ensure_program(program_name)
        started = time.monotonic()
        groups: Groups | AsyncIterator[Groups]
        if summary is not None and summary.tables == [t.physical for t in mine]:
            groups = _in_thread(summary.table_groups())  # applied while rolled up
        else:  # recovery, a retry, or the grammar changed meanwhile: read the landed file
            groups = await self.aggregate(mine, key)
        if not self._ddl_done:  # the bookkeeping of a separate processing database, current
            async with self.pool.acquire() as conn, conn.transaction():
                await contrib.lock_program(conn, program_name)
                await contrib.ensure_bookkeeping(conn)
            self._ddl_done = True
        applied = await contrib.apply_upload(self.pool, upload_id=upload_id,
                                             program=program_name, tables=mine, groups=groups,
                                             repeat=self.config.repeat)
        log.info("upload %s: groups per table and applied in %.1f s", upload_id,
                 time.monotonic() - started)
        return applied

    async def aggregate(self, tables: list[DatasetTable], key: str) -> Groups:
        if not tables:
            return {}
        source = self.read(key)
        try:
            return await asyncio.to_thread(aggregate_file, tables, source,
                                           asyncio.get_running_loop(), quote=self.quote,
                                           week=self.config.week, metric=self.config.metric)
        finally:
            await source.aclose()

    async def retract(self, record: dict[str, Any]) -> int | None:
        """Take a retracted upload's contribution out of its programme's tables."""
        if record.get("kind") != "event" or not record.get("program"):
            return None
        program, _, tables = await self.program_tables(record["program"])
        if program is None:
            return None
        async with self.pool.acquire() as conn:
            await contrib.ensure_bookkeeping(conn)  # 0.3.0's per-row records folded in first
            n = await contrib.retract_upload(conn, upload_id=record["id"],
                                             program=record["program"], tables=tables)
        if await self.jobs.get(record["id"]) is not None:
            await self.jobs.retracted(record["id"])
        return n

    async def rebuild(self, name: str) -> dict[str, Any]:
        """Empty a programme's tables and apply every landed, unretracted event upload again."""
        program, _, tables = await self.program_tables(name)
        if program is None:
            raise IngestError(f"programme '{name}' is not registered",
                              code="program_not_registered", status=404)
        await self.ensure_program(name)
        rows = await self.registry.store.pool.fetch(
            "SELECT id, ingestion_name, objects FROM uploads WHERE program = $1 AND kind = 'event' "
            "AND status = 'uploaded' AND NOT dry_run ORDER BY finished_at, id", name)

        async def source():
            for r in rows:
                objects = r["objects"]
                if isinstance(objects, str):
                    objects = json.loads(objects)
                key = (objects or {}).get("valid")
                if not isinstance(key, str) or (objects or {}).get("duplicate_of"):
                    continue
                mine = [t for t in tables if t.event == r["ingestion_name"]]
                yield r["id"], await self.aggregate(mine, key)

        async with self.pool.acquire() as conn:
            done = await contrib.rebuild_program(conn, program=name, tables=tables,
                                                 uploads=source(), repeat=self.config.repeat)
        for r in rows:
            if await self.jobs.get(r["id"]) is not None:
                await self.jobs.done(r["id"], done.tables, 0)
        return {"program": name, "uploads": len(rows), "tables": len(tables),
                "groups": done.groups}

    async def status(self, name: str) -> dict[str, Any]:
        """The last processed time and each table's row count."""
        program, _, tables = await self.program_tables(name)
        last = await self.jobs.last_done(name)
        out = []
        async with self.pool.acquire() as conn:
            for t in tables:
                exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                             f'datasets."{t.physical}"')
                rows = (await conn.fetchval(f'SELECT count(*) FROM datasets."{t.physical}"')
                        if exists else 0)
                out.append({"name": t.name, "table": f"datasets.{t.physical}", "rows": rows,
                            "grain": t.grain, "compound": t.compound})
        return {"last_processed_at": last.isoformat() if last else None, "tables": out}

    # -- the background loop ---------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def loop(self, interval_s: float = 2.0) -> None:
        """Run due jobs (new ones, retries after backoff, ones a dead instance held) until
        cancelled."""
        while True:
            try:
                for upload_id in await self.jobs.due():
                    await self.run(upload_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database away for a moment: try again later
                log.error("processing loop: %s: %s", type(e).__name__, e)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), interval_s)
            except asyncio.TimeoutError:
                pass


def attach_datasets(service: Any, *, service_pool: asyncpg.Pool, read: Reader) -> DatasetProcessor:
    """Give a started ``ProcessingService`` its datasets step (``service.datasets``)."""
    import os
    import socket
    import uuid
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    service.datasets = DatasetProcessor(config=service.config, registry=service.registry,
                                        pool=service.pool, jobs=JobStore(service_pool, owner),
                                        read=read, quote=service.quote)
    return service.datasets
