"""One streaming pass over one CSV: bytes → row chunks → checked in workers → staged objects.

The caller gets the staged (unpublished) writers back and decides, for the upload as a whole,
whether to publish or abort them; nothing here makes an object visible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from ..aio import uncancellable
from ..csvstream.checkers import CheckerSpec, ensure_checker, get_checker
from ..csvstream.shape import shape_header
from ..csvstream.stream import open_csv_stream
from ..csvstream.worker import header_rows
from ..errors import FileRejected
from ..storage.base import ObjectWriter, Storage, abort_all

CHECKER_FACTORY = "ingest_server.ingest.checker:build_checker"
SHAPED_FACTORY = "ingest_server.csvstream.shape:shaped_checker"


@dataclass(frozen=True)
class CsvTarget:
    """Where one CSV's rows go and how they are checked."""

    valid_key: str
    error_key: str
    schema_key: str
    schema: dict
    program_type: str
    ingestion_name: str
    program: str | None
    plugins_dir: str | None
    dry_run: bool = False
    allow_unknown: bool = False  # the spec lets undeclared columns pass through
    layout: str = "native"  # storage.layout: "cqube" writes cQube's file format


@dataclass
class CsvOutcome:
    header: list[str] = field(default_factory=list)
    total_rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    errors_sample: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    writers: list[ObjectWriter] = field(default_factory=list)
    valid_key: str | None = None
    error_key: str | None = None

    @property
    def error_rate(self) -> float:
        return self.invalid_rows / self.total_rows if self.total_rows else 0.0


@dataclass
class StreamStats:
    """Bytes and hash of everything read, shared by all CSVs of one upload."""

    nbytes: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    complete: bool = False  # the whole upload was read (else sha256 covers the bytes read)


HeaderCheck = Callable[[list[str]], Awaitable[None]]


async def ingest_csv(source: AsyncIterator[bytes], target: CsvTarget, *, storage: Storage,
                     runner: Any, upload_id: str, encoding: str | None, chunk_bytes: int,
                     max_line_bytes: int, sample_limit: int,
                     check_header: HeaderCheck | None = None) -> CsvOutcome:
    """Stream ``source`` through the checks into staged objects; abort them on any error."""
    outcome = CsvOutcome()
    try:
        stream = await open_csv_stream(source, encoding=encoding, chunk_size=chunk_bytes,
                                       max_line_bytes=max_line_bytes)
        if stream.chunker.header is None:
            raise FileRejected("the file is empty: no header row", code="empty_file")
        shape = shape_header(stream.header, target.schema)
        header = outcome.header = list(shape.names)
        outcome.warnings.extend(shape.warnings)
        undeclared = [c for c in header if c not in target.schema]
        if undeclared and target.allow_unknown:
            outcome.warnings.append({
                "code": "undeclared_columns",
                "message": f"column(s) not in the spec passed through unchecked: "
                           f"{', '.join(undeclared)}",
                "details": {"columns": undeclared}})
        spec = CheckerSpec(CHECKER_FACTORY, (target.plugins_dir, target.schema_key, target.schema,
                                             tuple(header), target.program_type,
                                             target.ingestion_name, target.program,
                                             target.allow_unknown))
        if target.layout == "cqube":
            spec = CheckerSpec(SHAPED_FACTORY, (shape, spec, target.schema))
        elif not shape.trivial:
            spec = CheckerSpec(SHAPED_FACTORY, (shape, spec))
        ctx_key = hashlib.sha256(repr(spec.args).encode()).hexdigest()
        # Compile and bind here too: a missing column is refused before any row is read.
        ensure_checker(ctx_key, spec)
        checker = get_checker(ctx_key)
        if check_header is not None:
            await check_header(header)
        output_format = getattr(checker, "output_format", None)
        if output_format is not None:
            valid_head, error_head = output_format.valid_head(), output_format.error_head(header)
        else:
            valid_head, error_head = header_rows(header, checker.output_header)

        valid_writer = error_writer = None
        if not target.dry_run:
            valid_writer = await storage.open_writer(target.valid_key, upload_id=upload_id)
            outcome.writers.append(valid_writer)
            await valid_writer.write(valid_head)
        async for result in runner.map_ordered(stream, ctx_key, spec):
            outcome.total_rows += result.rows
            outcome.valid_rows += result.valid_rows
            outcome.invalid_rows += result.invalid_rows
            room = sample_limit - len(outcome.errors_sample)
            if room > 0:
                outcome.errors_sample.extend(result.errors_sample[:room])
            if target.dry_run:
                continue
            if result.valid_csv:
                await valid_writer.write(result.valid_csv)
            if result.errors_csv:
                if error_writer is None:
                    error_writer = await storage.open_writer(target.error_key, upload_id=upload_id)
                    outcome.writers.append(error_writer)
                    await error_writer.write(error_head)
                await error_writer.write(result.errors_csv)
        if outcome.total_rows == 0:
            raise FileRejected("the file has a header but no data rows", code="no_rows",
                               header=header)
        if valid_writer is not None and outcome.valid_rows == 0:
            await valid_writer.abort()  # every row was rejected: no empty valid file
            outcome.writers.remove(valid_writer)
            valid_writer = None
        outcome.valid_key = target.valid_key if valid_writer else None
        outcome.error_key = target.error_key if error_writer else None
        return outcome
    except BaseException:
        writers, outcome.writers = list(outcome.writers), []
        await uncancellable(abort_all(writers))
        raise
