"""A cQube spec draft from a sample file: what each column holds, with the evidence.

Read up to ``max_rows`` rows of a CSV (any encoding with a BOM, UTF-8 otherwise, or the given
one; ``,`` ``;`` tab or ``|``, found from the header) or of a workbook's sheet. Per column:

* the type: ``integer`` if every non-blank value is a whole number, ``number`` if a number,
  ``boolean`` for true/false (yes/no), else ``string``; ISO dates get ``"format": "date"``, other
  date layouts seen are named in the evidence and pinned with a ``pattern``;
* ``shouldnotnull`` and ``required`` when no value is blank;
* ``enum`` for text with few distinct values (at most ``ENUM_MAX``, each seen at least twice on
  average) — bounded: at most ``DISTINCT_KEPT`` distinct values are remembered per column;
* evidence: blank count, distinct count (``"more than N"`` past the bound), up to 3 examples.

Blocking (reads a file on disk): run it in a thread.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import Any, Iterator

from ..csvstream.delimiter import NAMES
from ..csvstream.header import allow_long_fields
from ..errors import FileRejected

ENUM_MAX = 12
DISTINCT_KEPT = 200
MAX_ROWS = 100_000
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEAN = {"true", "false", "yes", "no"}
# (name shown, regular expression, the pattern written into the spec)
_DATES = (("yyyy-MM-dd", re.compile(r"[0-9]{4}-[01][0-9]-[0-3][0-9]"), None),
          ("dd-MM-yyyy", re.compile(r"[0-3][0-9]-[01][0-9]-[0-9]{4}"),
           "^[0-3][0-9]-[01][0-9]-[0-9]{4}$"),
          ("dd/MM/yyyy", re.compile(r"[0-3][0-9]/[01][0-9]/[0-9]{4}"),
           "^[0-3][0-9]/[01][0-9]/[0-9]{4}$"),
          ("dd/MM/yy", re.compile(r"[0-3][0-9]/[01][0-9]/[0-9]{2}"),
           "^[0-3][0-9]/[01][0-9]/[0-9]{2}$"))


class Column:
    def __init__(self, name: str) -> None:
        self.name = name
        self.blank = 0
        self.values = 0
        self.distinct: dict[str, int] = {}
        self.overflow = False
        self.integer = self.number = self.boolean = True
        self.dates: dict[str, int] = {}
        self.undated = 0
        self.examples: list[str] = []

    def add(self, value: str) -> None:
        value = value.strip()
        if not value:
            self.blank += 1
            return
        self.values += 1
        if value in self.distinct:
            self.distinct[value] += 1
        elif len(self.distinct) < DISTINCT_KEPT:
            self.distinct[value] = 1
            if len(self.examples) < 3:
                self.examples.append(value)
        else:
            self.overflow = True
        if self.integer and not _INTEGER.fullmatch(value):
            self.integer = False
        if self.number and not _NUMBER.fullmatch(value):
            self.number = False
        if self.boolean and value.lower() not in _BOOLEAN:
            self.boolean = False
        for name, pattern, _ in _DATES:
            if pattern.fullmatch(value):
                self.dates[name] = self.dates.get(name, 0) + 1
                break
        else:
            self.undated += 1

    def draft(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(the cQube property, the evidence)``."""
        prop: dict[str, Any]
        evidence: dict[str, Any] = {
            "blank": self.blank, "values": self.values,
            "distinct": f"more than {DISTINCT_KEPT}" if self.overflow else len(self.distinct),
            "examples": self.examples}
        if self.values == 0:
            prop, kind = {"type": "string"}, "empty"
        elif self.boolean:
            prop, kind = {"type": "boolean"}, "boolean"
        elif self.integer:
            prop, kind = {"type": "integer"}, "integer"
        elif self.number:
            prop, kind = {"type": "number"}, "number"
        elif self.dates and not self.undated:
            formats = sorted(self.dates)
            evidence["date_formats"] = formats
            kind = "date"
            if formats == ["yyyy-MM-dd"]:
                prop = {"type": "string", "format": "date"}
            elif len(formats) == 1:
                prop = {"type": "string",
                        "pattern": next(p for n, _, p in _DATES if n == formats[0])}
            else:
                prop = {"type": "string"}
        else:
            prop, kind = {"type": "string"}, "text"
            few = not self.overflow and len(self.distinct) <= ENUM_MAX
            if few and self.values >= 2 * len(self.distinct) and len(self.distinct) > 1:
                prop["enum"] = sorted(self.distinct)
        evidence["type"] = kind
        if self.blank == 0 and self.values:
            prop["shouldnotnull"] = True
        return prop, evidence


def _text_rows(path: Path, encoding: str | None, delimiter: str | None) -> Iterator[list[str]]:
    with open(path, "rb") as f:
        head = f.read(4)
    from ..ingest.source import bom_encoding, check_utf8  # noqa: PLC0415

    encoding = bom_encoding(head) or encoding
    if encoding is None:
        with open(path, "rb") as f:
            sample = f.read(64 * 1024)
        check_utf8(sample, complete=len(sample) < 64 * 1024)
        encoding = "utf-8-sig"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FileRejected(f"unknown encoding {encoding!r}", code="unknown_encoding") from None
    allow_long_fields()
    with open(path, encoding=encoding, errors="replace", newline="") as text:
        first = text.readline()
        if delimiter is None:
            counts = {d: first.count(d) for d in NAMES}
            delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
        yield from csv.reader(io.StringIO(first, newline=""), delimiter=delimiter)
        yield from csv.reader(text, delimiter=delimiter)


def _sheet_rows(path: Path, kind: str, sheet: str | None,
                max_cells: int = 0) -> Iterator[list[str]]:
    from ..workbook.sheet import SheetCsv  # noqa: PLC0415

    book = SheetCsv.open(path, kind, sheet, {}, max_cells=max_cells)
    try:
        allow_long_fields()
        for piece in book.pieces():
            yield from csv.reader(io.StringIO(piece.decode("utf-8", "replace"), newline=""))
    finally:
        book.close()


def infer_spec(path: Path, kind: str | None, *, name: str, sheet: str | None = None,
               encoding: str | None = None, delimiter: str | None = None,
               max_rows: int = MAX_ROWS, max_cells: int = 0) -> dict[str, Any]:
    """The draft spec and its evidence for the sample at ``path`` (``kind``: the workbook kind
    from ``workbook.sniff``, or None for text)."""
    rows = (_sheet_rows(path, kind, sheet, max_cells) if kind
            else _text_rows(path, encoding, delimiter))
    header: list[str] | None = None
    columns: list[Column] = []
    read = 0
    truncated = False
    for row in rows:
        if header is None:
            header = [c.strip() for c in row]
            while header and not header[-1]:
                header.pop()
            if not header:
                header = None
                continue
            if len(set(header)) != len(header) or "" in header:
                raise FileRejected("the header has empty or repeated column names",
                                   code="empty_header_name", header=header[:100])
            columns = [Column(c) for c in header]
            continue
        if not any(c.strip() for c in row):
            continue
        if read >= max_rows:
            truncated = True
            break
        read += 1
        for column, value in zip(columns, row + [""] * (len(columns) - len(row))):
            column.add(value)
    if header is None:
        raise FileRejected("the sample is empty: no header row", code="empty_file")
    properties, evidence = {}, {}
    for column in columns:
        properties[column.name], evidence[column.name] = column.draft()
    required = [c.name for c in columns if c.blank == 0 and c.values]
    return {"spec": {"program": name, "input": {"type": "object", "properties": properties,
                                                 "required": required}},
            "evidence": evidence, "rows_read": read, "truncated": truncated}
