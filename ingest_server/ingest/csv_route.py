"""One CSV through the upload path: the state-programme route, and each member of a ZIP.

``CsvRoute.run_csv`` streams one CSV into staged objects (keys from the program type, or the
cqube layout), checking the header with the plugins first; ``CsvRoute.ingest`` is the whole
``new_programs`` upload: the spec, then one ``run_csv`` inside the lifecycle.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

from .. import metrics
from ..config import Settings
from ..errors import FileRejected
from ..plugins import Registry, header_problems, plugin_extensions
from ..specs import Spec, SpecStore
from ..storage.base import Storage
from ..uploads import UploadStore
from ..validation.definition import uses_patterns
from ..validation.translate import spec_allows_unknown
from .checker import build_checker
from .cqube_keys import cqube_date, cqube_keys
from .lifecycle import Lifecycle
from .model import Context, CsvOutcome, CsvTarget, MemberOutcome, UploadRequest
from .pipeline import stream_csv
from .source import prepared_source

# (expected bytes, isolate) -> an in-process runner or a process pool
RunnerFor = Callable[[int | None, bool], Any]


class CsvRoute:
    def __init__(self, *, settings: Settings, specs: SpecStore, uploads: UploadStore,
                 storage: Storage, registry: Registry, runner_for: RunnerFor,
                 lifecycle: Lifecycle) -> None:
        self.settings = settings
        self.specs = specs
        self.uploads = uploads
        self.storage = storage
        self.registry = registry
        self.runner_for = runner_for
        self.lifecycle = lifecycle
        self.processing: Any = None  # processing.service.ProcessingService when enabled

    async def _processing_checks(self, req: UploadRequest) -> tuple[Any, tuple]:
        """A cQube grammar's checks for this file (before anything is read or recorded: a
        dimension with no rows is a 400 like a missing spec)."""
        if self.processing is None:
            return None, ()
        checks, warnings = await self.processing.checks_for(
            req.program_type.name, req.program, req.ingestion_name)
        return checks, tuple(warnings)

    async def ingest(self, req: UploadRequest, source: AsyncIterator[bytes],
                     expected_bytes: int | None = None,
                     summaries: list[Any] | None = None) -> dict[str, Any]:
        """Validate and land one CSV upload (``new_programs``); ``summaries`` gets the CSV's
        ``CsvOutcome.summary`` (the datasets' partial aggregates) when it has one."""
        spec = await self.specs.latest(req.program_type.spec_kind, req.ingestion_name)
        checks, warnings = await self._processing_checks(req)

        async def work(ctx: Context) -> None:
            member = MemberOutcome(name=req.ingestion_name, spec_version=spec.version)
            ctx.members.append(member)
            member.csv = await self.run_csv(ctx, ctx.source, spec, name=req.ingestion_name,
                                            program=req.program, req=req,
                                            expected_bytes=expected_bytes,
                                            processing=checks, processing_warnings=warnings)
            if summaries is not None and member.csv.summary is not None:
                summaries.append(member.csv.summary)

        return await self.lifecycle.run(req, source, work)

    async def _keys(self, req: UploadRequest, ctx: Context, *, name: str,
                    program: str | None) -> tuple[str, str]:
        now = datetime.now(timezone.utc)
        pt = req.program_type
        keys = pt.keys(program=program or name, name=name, date=now.strftime("%Y-%m-%d"),
                       upload_id=ctx.upload_id)
        if self.settings.storage.layout == "cqube":
            record = await self.uploads.get(ctx.upload_id)
            keys = cqube_keys(pt.name, program=program, name=name, pid=record["pid"],
                              date=cqube_date(now, self.settings.storage.timezone)) or keys
        return keys

    async def run_csv(self, ctx: Context, source: AsyncIterator[bytes], spec: Spec, *, name: str,
                      program: str | None, req: UploadRequest,
                      expected_bytes: int | None, processing: Any = None,
                      processing_warnings: tuple = ()) -> CsvOutcome:
        """One streaming pass of one CSV into staged objects (unpublished)."""
        pt = req.program_type
        valid_key, error_key = await self._keys(req, ctx, name=name, program=program)
        target = CsvTarget(valid_key=valid_key, error_key=error_key, schema_key=spec.cache_key,
                           schema=spec.cerberus, program_type=pt.name, ingestion_name=name,
                           program=program, plugins_dir=self.registry.plugins_dir,
                           dry_run=req.dry_run, allow_unknown=spec_allows_unknown(spec.source),
                           layout=self.settings.storage.layout, processing=processing,
                           processing_warnings=processing_warnings)
        limits, ingest = self.settings.limits, self.settings.ingest

        async def check_header(header: list[str]) -> None:
            problems = header_problems(self.registry.pm, program_type=pt.name,
                                       ingestion_name=name, program=program, header=header)
            if problems:
                code, message = problems[0]
                raise FileRejected(message, code=code,
                                   problems=[{"code": c, "message": m} for c, m in problems])

        started = time.perf_counter()
        extensions = plugin_extensions(self.registry.plugins_dir)
        async with prepared_source(source, encoding=req.encoding, sheet=req.sheet,
                                   spool_dir=self.settings.path(self.settings.server.state_dir)
                                   / "spool", schema=spec.cerberus,
                                   coercers=extensions.coercers if extensions else None,
                                   max_workbook_cells=limits.max_workbook_cells) as prep:
            outcome = await stream_csv(prep.pieces, target, storage=self.storage,
                                       runner=self.runner_for(expected_bytes,
                                                              uses_patterns(spec.cerberus)),
                                       build_checker=build_checker, upload_id=ctx.upload_id,
                                       encoding=prep.encoding, chunk_bytes=ingest.chunk_bytes,
                                       max_line_bytes=limits.max_line_bytes,
                                       sample_limit=limits.errors_sample,
                                       check_header=check_header, first_line=prep.first_line,
                                       delimiter="," if prep.delimiter_fixed else req.delimiter)
        outcome.warnings[:0] = prep.warnings
        metrics.validation_finished(pt.name, time.perf_counter() - started)
        return outcome
