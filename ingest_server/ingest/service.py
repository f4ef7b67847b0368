"""An upload from first byte to outcome: tracking, spec lookup, the pass, publish or abort.

Domain code: the view hands over an async iterator of the file's bytes and the form fields; this
module never sees aiohttp. Whatever happens — a bad file, a client that goes away, storage or
database failure — staged objects are aborted and the upload row ends ``rejected`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import asyncpg

from .. import metrics
from ..aio import uncancellable
from ..config import Settings
from ..errors import Conflict, FileRejected, IngestError, UploadTooLarge
from ..logs import log_event
from ..plugins import Registry, header_problems
from ..programs import ProgramType
from ..specs import Spec, SpecStore
from ..storage.base import Storage, abort_all, publish_all, revert_all
from ..uploads import UploadStore
from ..validation.translate import spec_allows_unknown
from .cqube_keys import cqube_date, cqube_keys
from ..bounded import bounded
from ..validation.definition import uses_rule
from . import idempotency
from .pipeline import CsvOutcome, CsvTarget, StreamStats, ingest_csv
from .recovery import OWNER
from .responses import response_body
from .spool import file_chunks

log = logging.getLogger("ingest_server.ingest")
HEARTBEAT_S = 15.0
HOOK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class UploadRequest:
    """What a client asked for, already checked for shape by the view."""

    program_type: ProgramType
    ingestion_name: str
    program: str | None
    filename: str
    client: str | None
    dry_run: bool = False
    max_error_rate: float | None = None
    encoding: str | None = None
    idempotency_key: str | None = None


@dataclass
class MemberOutcome:
    """One CSV of an upload: the whole upload for ``new_programs``, one member of a ZIP."""

    name: str
    csv: CsvOutcome | None = None
    spec_version: int | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.csv or CsvOutcome()
        return {"name": self.name, "spec_version": self.spec_version,
                "total_rows": c.total_rows, "valid_rows": c.valid_rows,
                "invalid_rows": c.invalid_rows, "error_rate": round(c.error_rate, 6),
                "objects": {"valid": c.valid_key, "errors": c.error_key},
                "errors_sample": c.errors_sample, "error": self.error}


@dataclass
class Context:
    """Handed to the work function of one upload."""

    upload_id: str
    source: AsyncIterator[bytes]
    stats: StreamStats
    members: list[MemberOutcome] = field(default_factory=list)


Work = Callable[[Context], Awaitable[None]]


def new_upload_id() -> str:
    """Time-ordered and unique: sorts by start time in listings and object keys."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:12]


class IngestService:
    def __init__(self, *, settings: Settings, specs: SpecStore, uploads: UploadStore,
                 storage: Storage, registry: Registry,
                 runner_for: Callable[[int | None, bool], Any]):
        self.settings = settings
        self.specs = specs
        self.uploads = uploads
        self.storage = storage
        self.registry = registry
        # (expected bytes, isolate) -> an in-process runner or a process pool
        self.runner_for = runner_for
        self.plugins_dir = registry.plugins_dir
        # Failed uploads whose staged data may outlive them (an abort fails while the store is
        # down): recovery retries their cleanup until it succeeds.
        self.unclean: set[str] = set()

    async def replay(self, req: UploadRequest,
                     source: AsyncIterator[bytes]) -> dict[str, Any] | None:
        """The earlier result for this Idempotency-Key, if there is one (see ``idempotency``)."""
        return await idempotency.replay(self.uploads, req, source)

    async def ingest_csv(self, req: UploadRequest, source: AsyncIterator[bytes],
                         expected_bytes: int | None = None) -> dict[str, Any]:
        """Validate and land one CSV upload (``new_programs``)."""
        spec = await self.specs.latest(req.program_type.spec_kind, req.ingestion_name)

        async def work(ctx: Context) -> None:
            member = MemberOutcome(name=req.ingestion_name, spec_version=spec.version)
            ctx.members.append(member)
            member.csv = await self.run_csv(ctx, ctx.source, spec, name=req.ingestion_name,
                                            program=req.program, req=req,
                                            expected_bytes=expected_bytes)

        return await self.run(req, source, work)

    async def ingest_zip(self, req: UploadRequest, path: Path, size: int) -> dict[str, Any]:
        """Validate and land every CSV member of a national-programme ZIP."""
        from .national import ingest_zip  # noqa: PLC0415 — national.py builds on this module

        return await ingest_zip(self, req, path, file_chunks(path))

    async def run(self, req: UploadRequest, source: AsyncIterator[bytes], work: Work) -> dict:
        """Track one upload around ``work``: create the row, heartbeat, conclude or fail."""
        upload_id = new_upload_id()
        stats = StreamStats()
        ctx = Context(upload_id=upload_id, source=self._counted(source, stats), stats=stats)
        # The row is created whatever happens to this task meanwhile, so that a client gone
        # during the INSERT cannot leave it "receiving": the failure path waits for it.
        creating = asyncio.ensure_future(self._start(req, upload_id))
        started = time.perf_counter()
        with metrics.IN_FLIGHT.labels(req.program_type.name).track_inprogress():
            try:
                await asyncio.shield(creating)
                async with self._heartbeat(ctx):
                    await work(ctx)
                record = await self._conclude(req, ctx)
            except BaseException as e:
                if creating.done() and not creating.cancelled() and creating.exception() is e:
                    raise  # never started (e.g. a replayed Idempotency-Key): nothing to clean up
                if isinstance(e, IngestError):
                    e.details.setdefault("upload_id", upload_id)  # so a client can look it up
                status, error = await uncancellable(self._clean_up(req, ctx, e, creating))
                report_outcome(req, ctx, status, error, None, time.perf_counter() - started)
                raise
        report_outcome(req, ctx, record["status"], record["error"], record,
                       time.perf_counter() - started)
        await self._notify(record)
        return response_body(record)

    async def run_csv(self, ctx: Context, source: AsyncIterator[bytes], spec: Spec, *, name: str,
                      program: str | None, req: UploadRequest,
                      expected_bytes: int | None) -> CsvOutcome:
        """One streaming pass of one CSV into staged objects (unpublished)."""
        now = datetime.now(timezone.utc)
        pt = req.program_type
        valid_key, error_key = pt.keys(program=program or name, name=name,
                                       date=now.strftime("%Y-%m-%d"), upload_id=ctx.upload_id)
        layout = self.settings.storage.layout
        if layout == "cqube":
            record = await self.uploads.get(ctx.upload_id)
            keys = cqube_keys(pt.name, program=program, name=name, pid=record["pid"],
                              date=cqube_date(now, self.settings.storage.timezone))
            if keys is not None:
                valid_key, error_key = keys
        target = CsvTarget(valid_key=valid_key, error_key=error_key, schema_key=spec.cache_key,
                           schema=spec.cerberus, program_type=pt.name, ingestion_name=name,
                           program=program, plugins_dir=self.plugins_dir, dry_run=req.dry_run,
                           allow_unknown=spec_allows_unknown(spec.source), layout=layout)
        limits, ingest = self.settings.limits, self.settings.ingest

        async def check_header(header: list[str]) -> None:
            problems = header_problems(self.registry.pm, program_type=pt.name,
                                       ingestion_name=name, program=program, header=header)
            if problems:
                code, message = problems[0]
                raise FileRejected(message, code=code,
                                   problems=[{"code": c, "message": m} for c, m in problems])

        started = time.perf_counter()
        outcome = await ingest_csv(source, target, storage=self.storage,
                                   runner=self.runner_for(expected_bytes,
                                                          uses_rule(spec.cerberus, "regex")),
                                   upload_id=ctx.upload_id,
                                   encoding=req.encoding, chunk_bytes=ingest.chunk_bytes,
                                   max_line_bytes=limits.max_line_bytes,
                                   sample_limit=limits.errors_sample, check_header=check_header)
        metrics.validation_finished(pt.name, time.perf_counter() - started)
        return outcome

    # -- internals ----------------------------------------------------------------------------

    async def _start(self, req: UploadRequest, upload_id: str) -> None:
        try:
            await self.uploads.create(
                upload_id=upload_id, route=req.program_type.route, client=req.client,
                filename=req.filename, kind=req.program_type.name, program=req.program,
                ingestion_name=req.ingestion_name, dry_run=req.dry_run,
                # A dry run does not claim its key: the real upload may use it after.
                idempotency_key=None if req.dry_run else req.idempotency_key, owner=OWNER,
                request_fingerprint=idempotency.request_fingerprint(req))
        except asyncpg.UniqueViolationError:
            raise Conflict("an upload with this Idempotency-Key is in progress",
                           code="upload_in_progress") from None

    async def _counted(self, source: AsyncIterator[bytes], stats: StreamStats):
        limit = self.settings.limits.max_upload_bytes
        async for piece in source:
            stats.nbytes += len(piece)
            if stats.nbytes > limit:
                raise UploadTooLarge(f"the upload is larger than {limit} bytes",
                                     max_upload_bytes=limit)
            stats.sha256.update(piece)
            yield piece
        stats.complete = True

    @contextlib.asynccontextmanager
    async def _heartbeat(self, ctx: Context):
        # well inside ingest.stale_upload_s, or another replica would take the upload for dead
        every_s = min(HEARTBEAT_S, self.settings.ingest.stale_upload_s / 4)

        async def beat() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.uploads.heartbeat(ctx.upload_id, ctx.stats.nbytes)
                except (OSError, asyncpg.PostgresError) as e:
                    log.warning("upload %s: heartbeat failed: %s", ctx.upload_id, e)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _conclude(self, req: UploadRequest, ctx: Context) -> dict[str, Any]:
        members = ctx.members
        writers = [w for m in members if m.csv for w in m.csv.writers]
        totals = {k: sum(getattr(m.csv, k) for m in members if m.csv)
                  for k in ("total_rows", "valid_rows", "invalid_rows")}
        sha = ctx.stats.sha256.hexdigest()
        status, error, objects = "uploaded", None, self._objects(req, members)
        over = [m for m in members if m.csv and req.max_error_rate is not None
                and m.csv.error_rate > req.max_error_rate]
        ingested = [m for m in members if m.csv]
        if not ingested:
            status = "rejected"
            error = {"code": "nothing_ingested", "message": "no file of this upload could be "
                     "validated (see the members' errors)"}
        elif over:
            status = "rejected"
            m = over[0]
            error = {"code": "error_rate_exceeded",
                     "message": f"{m.name}: {m.csv.invalid_rows} of {m.csv.total_rows} rows "
                                f"rejected ({m.csv.error_rate:.2%}), above max_error_rate "
                                f"{req.max_error_rate:.2%}; nothing was written",
                     "members": [x.name for x in over]}
        earlier, published = None, False
        finish = dict(status=status, sha256=sha, nbytes=ctx.stats.nbytes, error=error,
                      spec_version=members[0].spec_version if len(members) == 1 else None,
                      http_status=200, read_sha256=sha, read_complete=ctx.stats.complete,
                      **totals)
        national = req.program_type.route == "national_programs"
        warnings = self._warnings(members, national)
        if status != "uploaded" or req.dry_run:
            await abort_all(writers)
            await self.uploads.finish(
                ctx.upload_id, objects={"valid": None, "errors": None},
                members=self._members_json(members, False, None) if national else None,
                errors_sample=self._sample(members, national), warnings=warnings, **finish)
            return await self.uploads.get(ctx.upload_id)
        key = idempotency.dedup_key(req, sha, [(m.name, m.spec_version) for m in ingested])
        # In the cqube layout a later upload may have replaced the earlier one's object since:
        # the same bytes sent again must land again.
        dedup = self.settings.storage.layout != "cqube"
        try:
            # The check and the publish are one step per key, across processes and replicas.
            async with self.uploads.dedup_locked(key) as conn:
                if dedup:
                    earlier = await self.uploads.find_duplicate(
                        conn, dedup_key=key, exclude_id=ctx.upload_id,
                        window_s=self.settings.ingest.idempotency_window_s)
                if earlier is not None:
                    await abort_all(writers)
                    # The upload that wrote the objects, even when `earlier` was a duplicate.
                    original = earlier["objects"].get("duplicate_of") or earlier["id"]
                    objects = dict(earlier["objects"], duplicate_of=original)
                else:
                    await publish_all(writers)
                    published = True
                await self.uploads.finish(
                    ctx.upload_id, objects=objects, dedup_key=key, conn=conn,
                    members=self._members_json(members, published, earlier) if national else None,
                    errors_sample=self._sample(members, national), warnings=warnings, **finish)
        except BaseException:
            if published:  # not recorded as uploaded: take the objects back, as if never landed
                await uncancellable(revert_all(writers))
            raise
        return await self.uploads.get(ctx.upload_id)

    def _sample(self, members: list[MemberOutcome], per_member: bool) -> list[dict[str, Any]]:
        sample = [dict(e, member=m.name) if per_member else e
                  for m in members if m.csv for e in m.csv.errors_sample]
        return sample[:self.settings.limits.errors_sample]

    @staticmethod
    def _warnings(members: list[MemberOutcome], per_member: bool) -> list[dict[str, Any]]:
        # Bounded: a warning may quote the client's header (a 3 MB column name).
        return [bounded(dict(w, details={**w.get("details", {}), "member": m.name})
                        if per_member else w)
                for m in members if m.csv for w in m.csv.warnings]

    @staticmethod
    def _members_json(members: list[MemberOutcome], published: bool,
                      earlier: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Per-member results. Keys are only shown for objects that exist: a rejected or dry
        run upload has none, a duplicate points at the earlier upload's."""
        out = [m.to_json() for m in members]
        if not published:
            before = {m["name"]: m["objects"] for m in (earlier or {}).get("members") or []}
            for m in out:
                m["objects"] = before.get(m["name"], {"valid": None, "errors": None})
        return out

    @staticmethod
    def _objects(req: UploadRequest, members: list[MemberOutcome]) -> dict[str, Any]:
        if req.program_type.route == "national_programs":
            return {"valid": [m.csv.valid_key for m in members if m.csv and m.csv.valid_key],
                    "errors": [m.csv.error_key for m in members if m.csv and m.csv.error_key]}
        c = members[0].csv
        return {"valid": c.valid_key, "errors": c.error_key}

    async def _clean_up(self, req: UploadRequest, ctx: Context, e: BaseException,
                        creating: asyncio.Future) -> tuple[str, dict[str, Any]]:
        """After any failure: abort what was staged, record the outcome, remember what to retry.
        Runs to its end even if the upload's task is cancelled again meanwhile."""
        try:
            await creating
        except BaseException:  # the row was never created: there is nothing to record
            return "failed", {"code": "not_started", "message": "the upload did not start"}
        await abort_all([w for m in ctx.members if m.csv for w in m.csv.writers])
        status, error = await self._fail(req, ctx, e)
        if status == "failed":
            self.unclean.add(ctx.upload_id)
        return status, error

    async def _fail(self, req: UploadRequest, ctx: Context,
                    e: BaseException) -> tuple[str, dict[str, Any]]:
        if isinstance(e, IngestError):
            # 408: the client stopped sending; like a disconnect, the data was not at fault.
            status = "rejected" if e.status < 500 and e.status != 408 else "failed"
            error = e.to_json()["error"]  # cut to size: details may quote the input
        elif isinstance(e, asyncio.CancelledError):
            status, error = "failed", {"code": "cancelled", "message": "the upload was cancelled"}
        else:
            status = "failed"
            error = {"code": "interrupted" if isinstance(e, (ConnectionError, OSError))
                     else "internal_error", "message": f"{e.__class__.__name__}"}
        try:
            await self.uploads.finish(
                ctx.upload_id, status=status, sha256=None, nbytes=ctx.stats.nbytes, error=error,
                http_status=e.status if isinstance(e, IngestError) else 500,
                read_sha256=ctx.stats.sha256.hexdigest(), read_complete=ctx.stats.complete)
            record = await self.uploads.get(ctx.upload_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as db_error:
            # The row stays "receiving"; its stale heartbeat gets it failed by recovery.
            log.error("upload %s: could not record its failure: %s", ctx.upload_id, db_error)
            return status, error
        if record is not None:
            await self._notify(record)
        return status, error

    async def _notify(self, record: dict[str, Any]) -> None:
        """Run ``upload_finished`` hooks; a failing hook is logged, never fails the upload."""
        body = response_body(record)
        for impl in self.registry.pm.hook.upload_finished.get_hookimpls():
            try:
                # Each hook gets its own copy: one plugin's changes must not reach the next.
                result = impl.function(**({"upload": copy.deepcopy(body)}
                                          if impl.argnames else {}))
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, HOOK_TIMEOUT_S)
            except Exception as e:  # notification problems never change an upload's outcome
                log.error("plugin %s: upload_finished failed: %s: %s", impl.plugin_name,
                          e.__class__.__name__, e)


def report_outcome(req: UploadRequest, ctx: Context, status: str, error: dict[str, Any] | None,
                   record: dict[str, Any] | None, elapsed_s: float) -> None:
    """Metrics and the one log line of an upload's outcome. Rows count only for uploads that
    were concluded (``record``); a failure part-way reports none. Never row contents: the error
    is logged by code only (its message or details may quote the data)."""
    program = req.ingestion_name or req.program_type.name
    rows = {k: (record or {}).get(k) or 0 for k in ("total_rows", "valid_rows", "invalid_rows")}
    metrics.upload_finished(route=req.program_type.route, program_type=req.program_type.name,
                            program=program, outcome=status, nbytes=ctx.stats.nbytes,
                            valid_rows=rows["valid_rows"], invalid_rows=rows["invalid_rows"],
                            duration_s=elapsed_s)
    log_event(log, logging.WARNING if status == "failed" else logging.INFO, "upload finished",
              event="upload_finished", upload_id=ctx.upload_id, route=req.program_type.route,
              type=req.program_type.name, program=program, program_name=req.program,
              client=req.client, filename=req.filename, dry_run=req.dry_run, status=status,
              error_code=(error or {}).get("code"), bytes=ctx.stats.nbytes,
              duration_s=round(elapsed_s, 6), **rows)
