"""The upload path's one entrance: ``UploadService``, what every upload route calls.

Domain code: views hand over the checked request (``UploadRequest``) and an async iterator of the
file's bytes (or the spooled ZIP); nothing here sees aiohttp. The public API:

- ``replay(req, source)``: the earlier answer for the request's Idempotency-Key, if any;
- ``ingest_csv(req, source)``: one CSV (one-shot, tus, JSON rows, cqube) — its answer;
- ``ingest_zip(req, path, size)``: a national-programme ZIP — its answer;
- ``admit(req)``: what refuses an upload before any byte is read (tus creation);
- ``grammar_schema(grammar)`` and ``check_csv(...)``: ``/validate``, which records nothing.

Below it, imports pointing down: ``model`` (the data) ← ``layout`` (keys, file format,
duplicates) ← ``pipeline`` (one CSV pass through the checks) ← ``csv_pass`` (one CSV of an upload:
keys, reading, header check) ← ``zip_members`` (each member of a ZIP) and ``conclude``/``notify``
← ``lifecycle`` (``async with lifecycle.track(...)``: row, heartbeat, conclude or clean up) ←
here. ``runners`` says which workers check the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, AsyncIterator

from ..config import Settings
from ..csvstream.transcode import resolve_encoding
from ..errors import FileRejected, SpecNotFound, UploadTooLarge
from ..plugins.loading import Registry, plugin_extensions
from ..plugins.programs import ProgramType
from ..stores.specs import SpecStore
from ..storage.base import Storage
from ..stores.uploads import UploadStore
from ..validation import translate_cqube_spec
from ..validation.definition import uses_patterns
from . import idempotency
from .csv_pass import CsvPass
from .layout import layout_named
from .lifecycle import Lifecycle
from .model import CsvOutcome, CsvTarget, MemberOutcome, StreamStats, UploadRequest
from .notify import Notifier
from .pipeline import stream_csv
from .recovery import process_owner
from .runners import Runners
from .spool import file_sha256
from .zip_members import land_members, zip_limits

# Refused before the upload starts: no spec of the name, a dimension not loaded (processing).
REFUSED_AT_THE_DOOR = (SpecNotFound, FileRejected)


class UploadService:
    def __init__(self, *, settings: Settings, specs: SpecStore, uploads: UploadStore,
                 storage: Storage, registry: Registry, processing: Any = None) -> None:
        self.settings, self.specs, self.uploads = settings, specs, uploads
        self.storage, self.registry = storage, registry
        self.processing = processing  # processing.service.ProcessingService, when enabled
        self.layout = layout_named(settings.storage.layout, timezone=settings.storage.timezone)
        self.runners = Runners(settings)
        self.notifier = Notifier(registry.pm)
        self.lifecycle = Lifecycle(settings=settings, layout=self.layout, uploads=uploads,
                                   notifier=self.notifier, owner=process_owner())
        self.csv = CsvPass(settings=settings, layout=self.layout, uploads=uploads,
                           storage=storage, registry=registry, runners=self.runners)

    @property
    def unclean(self) -> set[str]:
        """Failed uploads whose staged data recovery must still remove."""
        return self.lifecycle.unclean

    def program_type(self, name: str) -> ProgramType | None:
        return self.registry.program_type(name)

    async def replay(self, req: UploadRequest,
                     source: AsyncIterator[bytes]) -> dict[str, Any] | None:
        """The earlier result for this Idempotency-Key, if there is one (see ``idempotency``)."""
        return await idempotency.replay(self.uploads, req, source)

    async def admit(self, req: UploadRequest) -> None:
        """Refuse now what ``ingest_csv`` would refuse before reading a byte: an unknown
        encoding, no spec of the name (a tus upload is created long before it completes)."""
        if req.encoding is not None:
            resolve_encoding(req.encoding)
        if not req.program_type.archive:  # the same 404 the one-shot route gives
            await self.specs.latest(req.program_type.spec_kind, req.ingestion_name)

    async def ingest_csv(self, req: UploadRequest, source: AsyncIterator[bytes],
                         expected_bytes: int | None = None, *,
                         record_refused: bool = False) -> dict[str, Any]:
        """Validate and land one CSV upload (``new_programs``); its answer. With processing, a
        landed dimension file is then loaded into its table, a landed event file's partial
        aggregates (computed while it streamed) go into its dataset tables (``processing`` in
        the answer: ``pending`` if that takes longer than ``processing.answer_wait_s``).
        ``record_refused``: an upload refused before it starts (no spec) is read to its end
        and recorded too, as cQube's FileTracker does (the error then names the upload)."""
        kind, name = req.program_type.spec_kind, req.ingestion_name
        try:
            # The spec as last seen here; creating the upload's row says if a newer one exists.
            spec = self.specs.last_seen(kind, name) or await self.specs.latest(kind, name)
            checks, warnings = await self._processing_checks(req, req.ingestion_name,
                                                             req.program)
        except REFUSED_AT_THE_DOOR as e:
            if record_refused:
                await self._record_refusal(req, source, e)
            raise
        async with self.lifecycle.track(req, source, spec=(kind, name)) as upload:
            if upload.spec_version != spec.version:  # registered since (by any process)
                spec = await self.specs.latest(kind, name)
            member = MemberOutcome(name=req.ingestion_name, spec_version=spec.version)
            upload.members.append(member)
            member.csv = await self.csv.run(upload, upload.source, spec, req=req,
                                            name=req.ingestion_name, program=req.program,
                                            expected_bytes=expected_bytes,
                                            processing=checks, processing_warnings=warnings)
        return await self._processed(req, upload.answer, member.csv.summary)

    async def ingest_zip(self, req: UploadRequest, path: Path, size: int,
                         sha256: str | None = None) -> dict[str, Any]:
        """Validate and land every CSV member of a national-programme ZIP at ``path`` (``size``
        bytes; ``sha256`` when it was hashed while spooled, else it is hashed here)."""
        if sha256 is None:
            sha256 = await asyncio.to_thread(file_sha256, path)
        async with self.lifecycle.track(req, StreamStats.spooled(size, sha256)) as upload:
            await land_members(upload, req, path, specs=self.specs, csv=self.csv,
                               limits=zip_limits(self.settings),
                               non_csv=self.settings.limits.zip_non_csv,
                               checks_for=self._member_checks)
        return upload.answer

    def grammar_schema(self, grammar: Any) -> dict:
        """The Cerberus schema of a cQube grammar, with the plugins' rules (InvalidSpec)."""
        return translate_cqube_spec(grammar, plugin_extensions(self.registry.plugins_dir))

    async def check_csv(self, chunks: AsyncIterator[bytes], *, kind: str, name: str,
                        schema: dict, sample_limit: int) -> CsvOutcome:
        """The checks of an upload of ``kind`` over a CSV, listing up to ``sample_limit`` row
        errors; nothing is written or recorded (``/validate``). A schema with a pattern is
        checked in the killable workers, never in this process."""
        sha = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
        target = CsvTarget(valid_key="validate/none", error_key="validate/none",
                           schema_key=f"validate/{sha[:16]}", schema=schema, program_type=kind,
                           ingestion_name=name, program=None,
                           plugins_dir=self.registry.plugins_dir, dry_run=True)
        return await stream_csv(chunks, target, storage=self.storage,
                                runner=self.runners.listing(sample_limit, uses_patterns(schema)),
                                upload_id="validate", encoding=None,
                                chunk_bytes=self.settings.ingest.chunk_bytes,
                                max_line_bytes=self.settings.limits.max_line_bytes,
                                sample_limit=sample_limit)

    async def start(self) -> None:
        await self.runners.start()

    async def close(self, timeout_s: float) -> None:
        """At shutdown: wait up to ``timeout_s`` for the ``upload_finished`` notifications still
        running, then stop the workers."""
        await self.notifier.wait(timeout_s)
        await self.runners.close()

    # -- internals ----------------------------------------------------------------------------

    async def _processing_checks(self, req: UploadRequest, name: str,
                                 program: str | None) -> tuple[Any, tuple]:
        """A cQube grammar's checks for the CSV ``name`` (a state file: before anything is
        read or recorded, so a dimension with no rows is a 400 like a missing spec)."""
        if self.processing is None:
            return None, ()
        checks, warnings = await self.processing.checks_for(
            req.program_type.spec_kind, program, name)
        return checks, tuple(warnings)

    async def _member_checks(self, req: UploadRequest, name: str) -> tuple[Any, tuple]:
        """A ZIP member's grammar checks: found by the member's name (a ZIP names no
        programme unless ``program_name`` was sent). Without the datasets: a member's rows
        are not aggregated while they stream (no datasets job is started for a ZIP)."""
        checks, warnings = await self._processing_checks(req, name, req.program)
        if checks is not None and checks.datasets:
            checks = dataclasses.replace(checks, datasets=())
        return checks, warnings

    async def _processed(self, req: UploadRequest, body: dict[str, Any],
                         summary: Any = None) -> dict[str, Any]:
        """With processing: a landed dimension file loaded, a dataset's job started (with the
        ``summary`` of its rows: its partial aggregates)."""
        processing = self.processing
        if processing is None:
            return body
        done = await processing.after_upload(req.program_type.name, req.ingestion_name, body,
                                             self.storage.read)
        if done is not None:
            body["processing"] = done
        datasets = getattr(processing, "datasets", None)
        if datasets is not None and await datasets.enqueue(body):
            await datasets.start(body["upload_id"], summary, body.get("valid_rows"))
            body["processing"] = await self.uploads.processing_state(body["upload_id"])
        return body

    async def _record_refusal(self, req: UploadRequest, source: AsyncIterator[bytes],
                              error: Exception) -> None:
        """An upload refused before it started, recorded ``rejected`` through the lifecycle
        (metrics, ``upload_finished``) after its file was read (up to the size limit). It
        claims no Idempotency-Key: the same request may succeed once the spec exists."""
        req = dataclasses.replace(req, idempotency_key=None)
        async with self.lifecycle.track(req, source) as upload:
            with contextlib.suppress(UploadTooLarge):
                async for _ in upload.source:
                    pass
            raise error
