"""An upload's lifecycle, whatever its kind: start, heartbeat, conclude, clean up, fail, notify.

``async with Lifecycle.track(req, source) as upload:`` creates the upload's row and keeps its
heartbeat while the block streams the file into staged objects; at the end of the block it
concludes (publish or abort, record) or, on any failure — a bad file, a client that goes away,
storage or database failure — aborts what was staged and records the upload ``rejected`` or
``failed``. Metrics, the outcome's log line and ``upload_finished`` (in the background) follow
either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, AsyncIterator

from .. import metrics
from ..aio import in_background, uncancellable
from ..config import Settings
from ..errors import DatabaseError, IngestError, UploadTooLarge
from ..logs import log_event
from ..storage.base import abort_all
from ..stores.uploads import UploadRecord, UploadStore
from . import idempotency
from .conclude import conclude
from .layout import Layout
from .model import StreamStats, Upload, UploadRequest, new_upload_id
from .notify import Notifier
from .responses import response_body

log = logging.getLogger("ingest_server.ingest")
HEARTBEAT_S = 15.0


class Lifecycle:
    def __init__(self, *, settings: Settings, layout: Layout, uploads: UploadStore,
                 notifier: Notifier, owner: str) -> None:
        self.settings = settings
        self.layout = layout
        self.uploads = uploads
        self.notifier = notifier
        self.owner = owner  # this process, as recovery knows it (``host:pid:token``)
        # Failed uploads whose staged data may outlive them (an abort fails while the store is
        # down): recovery retries their cleanup until it succeeds.
        self.unclean: set[str] = set()

    @contextlib.asynccontextmanager
    async def track(self, req: UploadRequest, source: AsyncIterator[bytes] | StreamStats,
                    spec: tuple[str, str] | None = None) -> AsyncIterator[Upload]:
        """One upload, around the block that streams it into staged objects::

            async with lifecycle.track(req, source) as upload:
                upload.members.append(...)  # reads upload.source
            return upload.answer

        Creates the row, keeps its heartbeat while the block runs, then concludes (publish or
        abort, record); if the block raises, aborts what was staged and records the upload
        ``rejected`` or ``failed``, then the error goes on. ``source`` is the file's bytes
        (counted and hashed as the block reads them), or the ``StreamStats`` of a file already
        read whole (a spooled archive). ``spec`` (kind, name): ``upload.spec_version`` is its
        latest version when the row was created (read in the same statement)."""
        upload_id = new_upload_id()
        if isinstance(source, StreamStats):
            stats, source = source, _nothing()
        else:
            stats = StreamStats()
            source = self._counted(source, stats)
        upload = Upload(upload_id=upload_id, source=source, stats=stats)
        # The row is created whatever happens to this task meanwhile, so that a client gone
        # during the INSERT cannot leave it "receiving": the failure path waits for it.
        creating = asyncio.ensure_future(self._start(req, upload_id, spec))
        started = time.perf_counter()
        with metrics.IN_FLIGHT.labels(req.program_type.name).track_inprogress():
            try:
                upload.spec_version = await asyncio.shield(creating)
                async with self._heartbeat(upload):
                    yield upload
                record = await conclude(self.settings, self.layout, self.uploads, req, upload)
            except BaseException as e:
                if creating.done() and not creating.cancelled() and creating.exception() is e:
                    raise  # never started (e.g. a replayed Idempotency-Key): nothing to clean up
                if isinstance(e, IngestError):
                    e.details.setdefault("upload_id", upload_id)  # so a client can look it up
                status, error = await uncancellable(self._clean_up(req, upload, e, creating))
                report_outcome(req, upload, status, error, None, time.perf_counter() - started)
                raise
        report_outcome(req, upload, record["status"], record["error"], record,
                       time.perf_counter() - started)
        upload.answer = response_body(record)
        self.notifier.notify(upload.answer)

    async def _start(self, req: UploadRequest, upload_id: str,
                     spec: tuple[str, str] | None) -> int | None:
        return await self.uploads.create(
            upload_id=upload_id, route=req.program_type.route, client=req.client,
            filename=req.filename, kind=req.program_type.name, program=req.program,
            ingestion_name=req.ingestion_name, dry_run=req.dry_run,
            # A dry run does not claim its key (a taken one is a 409 upload_in_progress).
            idempotency_key=None if req.dry_run else req.idempotency_key, owner=self.owner,
            request_fingerprint=idempotency.request_fingerprint(req), spec=spec)

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

    def _heartbeat(self, upload: Upload):
        """The upload's heartbeat for the duration of a block."""
        # well inside ingest.stale_upload_s, or another replica would take the upload for dead
        every_s = min(HEARTBEAT_S, self.settings.ingest.stale_upload_s / 4)

        async def beat() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.uploads.heartbeat(upload.upload_id, upload.stats.nbytes)
                except DatabaseError as e:
                    log.warning("upload %s: heartbeat failed: %s", upload.upload_id, e)

        return in_background(beat())

    async def _clean_up(self, req: UploadRequest, upload: Upload, e: BaseException,
                        creating: asyncio.Future) -> tuple[str, dict[str, Any]]:
        """After any failure: abort what was staged, record the outcome, remember what to retry.
        Runs to its end even if the upload's task is cancelled again meanwhile."""
        try:
            await creating
        except BaseException:  # the row was never created: there is nothing to record
            return "failed", {"code": "not_started", "message": "the upload did not start"}
        await abort_all([w for m in upload.members if m.csv for w in m.csv.writers])
        status, error = await self._fail(req, upload, e)
        if status == "failed":
            self.unclean.add(upload.upload_id)
        return status, error

    async def _fail(self, req: UploadRequest, upload: Upload,
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
                upload.upload_id, status=status, sha256=None, nbytes=upload.stats.nbytes,
                error=error,
                http_status=e.status if isinstance(e, IngestError) else 500,
                read_sha256=upload.stats.hexdigest(), read_complete=upload.stats.complete)
            record = await self.uploads.get(upload.upload_id)
        except DatabaseError as db_error:
            # The row stays "receiving"; its stale heartbeat gets it failed by recovery.
            log.error("upload %s: could not record its failure: %s", upload.upload_id, db_error)
            return status, error
        if record is not None:
            self.notifier.notify(response_body(record))
        return status, error


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator with no items


def report_outcome(req: UploadRequest, upload: Upload, status: str,
                   error: dict[str, Any] | None, record: UploadRecord | None,
                   elapsed_s: float) -> None:
    """Metrics and the one log line of an upload's outcome. Rows count only for uploads that
    were concluded (``record``); a failure part-way reports none. Never row contents: the error
    is logged by code only (its message or details may quote the data)."""
    program = req.ingestion_name or req.program_type.name
    rows = {k: (record or {}).get(k) or 0 for k in ("total_rows", "valid_rows", "invalid_rows")}
    metrics.upload_finished(route=req.program_type.route, program_type=req.program_type.name,
                            program=program, outcome=status, nbytes=upload.stats.nbytes,
                            valid_rows=rows["valid_rows"], invalid_rows=rows["invalid_rows"],
                            duration_s=elapsed_s)
    log_event(log, logging.WARNING if status == "failed" else logging.INFO, "upload finished",
              event="upload_finished", upload_id=upload.upload_id, route=req.program_type.route,
              type=req.program_type.name, program=program, program_name=req.program,
              client=req.client, filename=req.filename, dry_run=req.dry_run, status=status,
              error_code=(error or {}).get("code"), bytes=upload.stats.nbytes,
              duration_s=round(elapsed_s, 6), **rows)
