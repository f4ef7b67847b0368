"""One CSV of an upload into staged objects: the whole file of a one-shot, tus or JSON-rows
upload, or one member of a national ZIP.

``CsvPass.run`` names the CSV's objects (the storage layout), reads the file's first bytes
(encoding, workbook, delimiter: ``source``), checks the header with the plugins, then streams the
rows through the checks (``pipeline``) into staged, unpublished objects. Publishing or aborting
them is the lifecycle's, for the upload as a whole.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from .. import metrics
from ..config import Settings
from ..errors import FileRejected
from ..plugins.loading import Registry, header_problems, plugin_extensions
from ..stores.specs import Spec
from ..storage.base import Storage
from ..stores.uploads import UploadStore
from ..validation.definition import uses_patterns
from ..validation.translate import spec_allows_unknown
from .layout import Layout
from .model import CsvOutcome, CsvTarget, Upload, UploadRequest
from .pipeline import stream_csv
from .runners import Runners
from .source import prepared_source


class CsvPass:
    def __init__(self, *, settings: Settings, layout: Layout, uploads: UploadStore,
                 storage: Storage, registry: Registry, runners: Runners) -> None:
        self.settings = settings
        self.layout = layout
        self.uploads = uploads
        self.storage = storage
        self.registry = registry
        self.runners = runners

    async def run(self, upload: Upload, source: AsyncIterator[bytes], spec: Spec, *,
                  req: UploadRequest, name: str, program: str | None,
                  expected_bytes: int | None, processing: Any = None,
                  processing_warnings: tuple = ()) -> CsvOutcome:
        """One streaming pass of one CSV (``name``, landing in ``program``) into staged
        objects; ``processing``: a cQube grammar's row checks (DESIGN.md §12)."""
        pt = req.program_type

        async def pid() -> int:
            return (await self.uploads.get(upload.upload_id))["pid"]

        valid_key, error_key = await self.layout.keys(
            pt, program=program, name=name, now=datetime.now(timezone.utc),
            upload_id=upload.upload_id, pid=pid)
        target = CsvTarget(valid_key=valid_key, error_key=error_key, schema_key=spec.cache_key,
                           schema=spec.cerberus, program_type=pt.name, ingestion_name=name,
                           program=program, plugins_dir=self.registry.plugins_dir,
                           dry_run=req.dry_run, allow_unknown=spec_allows_unknown(spec.source),
                           layout=self.layout, processing=processing,
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
                                       runner=self.runners.for_upload(
                                           expected_bytes, uses_patterns(spec.cerberus)),
                                       upload_id=upload.upload_id,
                                       encoding=prep.encoding, chunk_bytes=ingest.chunk_bytes,
                                       max_line_bytes=limits.max_line_bytes,
                                       sample_limit=limits.errors_sample,
                                       check_header=check_header, first_line=prep.first_line,
                                       delimiter="," if prep.delimiter_fixed else req.delimiter)
        outcome.warnings[:0] = prep.warnings
        metrics.validation_finished(pt.name, time.perf_counter() - started)
        return outcome
