"""The upload path as the web layer sees it: one object wiring the routes to the lifecycle.

Domain code: views hand over an async iterator of the file's bytes (or the spooled ZIP) and the
form's request; nothing here sees aiohttp. The modules below it, imports pointing down:
``model`` (the data) ← ``pipeline`` (one CSV pass) ← ``conclude``/``notify`` ← ``lifecycle``
(start, heartbeat, conclude, clean up, fail, notify) ← ``csv_route`` ← ``zip_route`` ← here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

from ..config import Settings
from ..plugins import Registry
from ..specs import SpecStore
from ..storage.base import Storage
from ..uploads import UploadStore
from . import idempotency
from .csv_route import CsvRoute, RunnerFor
from .lifecycle import Lifecycle
from .model import StreamStats, UploadRequest
from .notify import Notifier
from .recovery import process_owner
from .spool import file_sha256
from .zip_route import ingest_zip


class IngestService:
    def __init__(self, *, settings: Settings, specs: SpecStore, uploads: UploadStore,
                 storage: Storage, registry: Registry, runner_for: RunnerFor,
                 processing: Any = None) -> None:
        self.settings, self.specs, self.uploads = settings, specs, uploads
        self.storage, self.registry = storage, registry
        self.notifier = Notifier(registry.pm)
        self.lifecycle = Lifecycle(settings=settings, uploads=uploads, notifier=self.notifier,
                                   owner=process_owner())
        self.csv = CsvRoute(settings=settings, specs=specs, uploads=uploads, storage=storage,
                            registry=registry, runner_for=runner_for, lifecycle=self.lifecycle)
        self.csv.processing = processing  # processing.service.ProcessingService, when enabled

    @property
    def unclean(self) -> set[str]:
        """Failed uploads whose staged data recovery must still remove."""
        return self.lifecycle.unclean

    async def replay(self, req: UploadRequest,
                     source: AsyncIterator[bytes]) -> dict[str, Any] | None:
        """The earlier result for this Idempotency-Key, if there is one (see ``idempotency``)."""
        return await idempotency.replay(self.uploads, req, source)

    async def ingest_csv(self, req: UploadRequest, source: AsyncIterator[bytes],
                         expected_bytes: int | None = None) -> dict[str, Any]:
        """Validate and land one CSV upload (``new_programs``); with processing, a landed
        dimension file is then loaded into its table, a landed event file's partial aggregates
        (computed while it streamed) go into its dataset tables (``processing`` in the answer:
        ``pending`` if that takes longer than ``processing.answer_wait_s``)."""
        summaries: list[Any] = []
        body = await self.csv.ingest(req, source, expected_bytes, summaries)
        processing = self.csv.processing
        if processing is not None:
            done = await processing.after_upload(req.program_type.name, req.ingestion_name, body,
                                                 self.storage.read)
            if done is not None:
                body["processing"] = done
            datasets = getattr(processing, "datasets", None)
            if datasets is not None and await datasets.enqueue(body):
                await datasets.start(body["upload_id"], summaries[0] if summaries else None,
                                     body.get("valid_rows"))
                body["processing"] = await self.uploads.processing_state(body["upload_id"])
        return body

    async def ingest_zip(self, req: UploadRequest, path: Path, size: int,
                         sha256: str | None = None) -> dict[str, Any]:
        """Validate and land every CSV member of a national-programme ZIP at ``path`` (``size``
        bytes; ``sha256`` when it was hashed while spooled, else it is hashed here)."""
        if sha256 is None:
            sha256 = await asyncio.to_thread(file_sha256, path)
        return await ingest_zip(self.csv, req, path, StreamStats.spooled(size, sha256))

    async def drain(self, timeout_s: float) -> None:
        """At shutdown: wait for the ``upload_finished`` notifications still running."""
        await self.notifier.drain(timeout_s)
