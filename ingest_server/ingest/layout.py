"""Where an upload's files land and how they are written: ``storage.layout``, one object chosen at
start-up (``layout_named``). The only place in the upload path that knows there are two.

- ``NATIVE``: keys from the program type's templates, each carrying the upload id, so a key
  belongs to one upload for ever; RFC 4180 files (an error file adds ``_line`` and ``_errors``);
  the same bytes sent again within ``ingest.idempotency_window_s`` are a duplicate, nothing new
  is written.
- ``CqubeLayout``: exactly where cQube puts files (``cqube_keys``, CQUBE.md §3) in its file format
  (``csvstream.cqube_format``); names carry no upload id, so a later upload of the same name on
  the same day *replaces* the earlier object — and the same bytes sent again must land again
  (no duplicate check).

Everything else asks the object: ``keys``, ``output_format``, ``finds_duplicates``,
``valid_quote``. Program types other than the built-in four keep their native keys in both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable

from ..csvstream.cqube_format import CqubeFormat
from ..plugins.programs import ProgramType
from .cqube_keys import cqube_date, cqube_keys

# The upload's number (cQube's FileTracker pid), looked up only by a layout that names files by it.
PidLookup = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class Layout:
    name: str
    finds_duplicates: bool = True  # the same bytes again are a duplicate of the earlier upload
    valid_quote: str = '"'  # the quote character of a valid file, for whoever reads it back

    async def keys(self, pt: ProgramType, *, program: str | None, name: str, now: datetime,
                   upload_id: str, pid: PidLookup) -> tuple[str, str]:
        """(valid key, error key) of one CSV of an upload."""
        return pt.keys(program=program or name, name=name, date=now.strftime("%Y-%m-%d"),
                       upload_id=upload_id)

    def output_format(self, schema: dict) -> Callable[[list[str]], Any] | None:
        """A picklable factory of the file format, called in each worker process with the
        checker's output header; None for plain RFC 4180 (``csvstream.worker.header_rows``)."""
        return None


@dataclass(frozen=True)
class CqubeLayout(Layout):
    """``storage.layout = "cqube"``: cQube's keys, in ``storage.timezone``, and file format."""

    timezone: str = "UTC"

    async def keys(self, pt: ProgramType, *, program: str | None, name: str, now: datetime,
                   upload_id: str, pid: PidLookup) -> tuple[str, str]:
        # ``pt.keys`` first: it refuses an unsafe name before cqube_keys formats it.
        native = await super().keys(pt, program=program, name=name, now=now,
                                    upload_id=upload_id, pid=pid)
        keys = cqube_keys(pt.name, program=program, name=name, pid=await pid(),
                          date=cqube_date(now, self.timezone))
        return keys or native

    def output_format(self, schema: dict) -> Callable[[list[str]], Any] | None:
        return functools.partial(CqubeFormat, schema=schema)


NATIVE = Layout("native")


def layout_named(name: str, *, timezone: str = "UTC") -> Layout:
    """The layout ``storage.layout`` names (config checked it is one of the two)."""
    if name == NATIVE.name:
        return NATIVE
    return CqubeLayout("cqube", finds_duplicates=False, valid_quote="'", timezone=timezone)
