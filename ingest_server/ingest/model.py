"""The upload as data: what a client asked for, and what one pass of each CSV gave.

The lowest module of the upload path: it imports nothing of it, every other module imports it.

One name per idea (the wire keeps cQube's names):

- the *program type* (``ProgramType``; its ``name`` is the wire's ``ingestion_type`` and the
  ``kind`` column of ``uploads``; hooks get the name as ``program_type``);
- the *ingestion name*: the spec's name (cQube's ``program`` inside a spec);
- the *program*: the output folder, the wire's ``program_name`` (``program`` in the database
  and in hooks); ``None`` when the type does not need one.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from ..plugins.programs import ProgramType
from ..storage.base import ObjectWriter
from .layout import NATIVE, Layout


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
    layout: Layout = NATIVE  # storage.layout: keys were chosen by it, it chooses the format
    # A grammar's row checks (processing.rowcheck.ProcessingChecks) and the upload's warnings
    # about them (DESIGN.md §12).
    processing: Any = None
    processing_warnings: tuple[dict[str, Any], ...] = ()


@dataclass
class CsvOutcome:
    header: list[str] = field(default_factory=list)
    total_rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    rewritten_rows: int = 0  # valid rows landed with a key written as its dimension stores it
    errors_sample: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    writers: list[ObjectWriter] = field(default_factory=list)
    valid_key: str | None = None
    error_key: str | None = None
    # What the checker's ``summarise`` made of the valid rows, merged (processing's
    # ``aggregate.Aggregator``: the datasets' partial aggregates); None without.
    summary: Any = None

    @property
    def error_rate(self) -> float:
        return self.invalid_rows / self.total_rows if self.total_rows else 0.0


@dataclass
class StreamStats:
    """Bytes and hash of everything read, shared by all CSVs of one upload."""

    nbytes: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    complete: bool = False  # the whole upload was read (else sha256 covers the bytes read)
    known_sha256: str | None = None  # hashed already (a spooled archive, hashed while spooled)

    @classmethod
    def spooled(cls, nbytes: int, sha256: str) -> StreamStats:
        """A file read whole before its upload started."""
        return cls(nbytes=nbytes, complete=True, known_sha256=sha256)

    def hexdigest(self) -> str:
        return self.known_sha256 or self.sha256.hexdigest()


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
    sheet: str | None = None  # a workbook's sheet to read (else its only one)
    delimiter: str | None = None  # the CSV's (else found from the header)


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
class Upload:
    """One upload in progress, as ``Lifecycle.track`` hands it to the block that streams it:
    ``source`` (the file's bytes, counted and hashed as they are read) goes into staged
    objects, one ``MemberOutcome`` per CSV; ``answer`` is set once the block is over."""

    upload_id: str
    source: AsyncIterator[bytes]
    stats: StreamStats
    members: list[MemberOutcome] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    spec_version: int | None = None  # the latest of the spec ``track`` was given, at the start


def new_upload_id() -> str:
    """Time-ordered and unique: sorts by start time in listings and object keys."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:12]


