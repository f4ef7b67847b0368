"""Turn one chunk of raw records into checked, serialised output (runs in a worker process).

Per record: decode, parse with ``csv.reader``, find the physical line where the record starts,
check it, then write it to the valid output (as ``check`` returned it) or, with its original cells
plus ``_line`` and ``_errors``, to the error output. Completely blank lines are skipped and
counted nowhere (``csv.reader`` yields ``[]`` for them); a line of spaces is a record. A row
whose length differs from the header is mapped onto it by the checker's shape (``shape.py``:
trailing blank cells, dropped header columns, ragged rows fitted so the error file stays a CSV
under its header); a checker with an ``output_format`` (chosen by the storage layout,
``ingest/layout.py``) decides how the rows are written.

Decoding: the fast path decodes the whole chunk at once. When that fails the chunk is decoded
with ``surrogateescape`` instead of line by line: invalid bytes (always >= 0x80, so never a
comma, quote or newline) then survive as lone surrogates, and exactly the records holding them
become ``encoding_error`` row errors, their values shown with ``backslashreplace``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any, Iterator

from ingest_server.bounded import clip
from ingest_server.csvstream.checkers import RowChecker, get_checker
from ingest_server.csvstream.chunker import Chunk
from ingest_server.csvstream.header import allow_long_fields
from ingest_server.csvstream.shape import HeaderShape
from ingest_server.errors import FileRejected

DEFAULT_SAMPLE_LIMIT = 100

_SURROGATE = re.compile("[\udc80-\udcff]")
_ROW_COLUMN = "(row)"  # how a whole-row error (column None) is named in ``_errors``


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What a chunk turned into. ``rows`` = ``valid_rows`` + ``invalid_rows`` (blank lines
    excluded); ``errors_sample`` holds at most ``sample_limit`` row error records
    ``{"line", "column", "value", "code", "message"}``; ``last_line`` is the chunk's last
    physical line."""

    seq: int
    rows: int
    valid_rows: int
    invalid_rows: int
    valid_csv: bytes
    errors_csv: bytes
    errors_sample: list[dict[str, Any]]
    last_line: int
    rewritten_rows: int = 0  # valid rows the checker returned as a ``RewrittenRow``
    partials: Any = None  # the checker's ``summarise`` of the valid rows, if it has one


class RewrittenRow(list):
    """A valid row a checker wrote differently from the file and wants counted (the cQube
    grammar checks land a key as the dimension stores it: ``processing/rowcheck.py``)."""


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _plain_csv_bytes(rows: list[list[str]], ncols: int) -> bytes | None:
    """``_csv_bytes(rows)`` for rows of ``ncols`` (> 1) cells none of which needs quoting, made
    by joining (about 4x faster than ``csv.writer``); None when some cell would need quotes.
    The counts prove it: if no cell holds a comma, quote, CR or LF, ``csv.writer``
    (QUOTE_MINIMAL) writes every cell as it is, which is exactly what the join does."""
    if not rows:
        return b""
    if any(len(r) != ncols for r in rows):  # a plugin changed a row in place: not ours to judge
        return None
    try:
        out = "\r\n".join([",".join(r) for r in rows]) + "\r\n"
    except TypeError:  # a cell that is not a str (a plugin changed the row in place)
        return None
    n = len(rows)
    if (out.count(",") != (ncols - 1) * n or out.count("\n") != n or out.count("\r") != n
            or '"' in out):
        return None
    return out.encode("utf-8")


def _lines(text: str) -> list[str] | None:
    """The lines of a chunk without a lone CR (LF or CRLF endings), for ``csv.reader``: one
    string each, unlike ``io.StringIO`` (a UCS-4 copy of the whole chunk, 4 bytes a character).
    None when a CR alone ends a line."""
    body = text.replace("\r\n", "\n") if "\r" in text else text
    if "\r" in body:
        return None
    lines = body.split("\n")
    if not lines[-1]:
        lines.pop()  # the chunk's last line ending, not a line of its own
    return lines


def _split(lines: list[str], delimiter: str) -> Iterator[list[str]]:
    """The records of a plain chunk's ``_lines`` exactly as ``csv.reader`` gives them: with no
    quote, CR or NUL in the chunk (``plain``) a record is its line split at the delimiter, and a
    blank line is ``[]``. About 0.1 µs a row less than ``csv.reader``: a sixth of a worker's
    CPU on the 1M-row benchmark file (1.15 → 0.96 CPU-s in ``process_chunk``)."""
    return (line.split(delimiter) if line else [] for line in lines)


class _RowTexts(list):
    """A file for ``csv.writer`` that keeps each row's text apart (the writer writes a row in
    one call): many rows serialised by one writer, each put back in its place after."""

    write = list.append


def _as_sent(lines: list[str], dropped: list[int], changed: dict[int, list[str]]) -> bytes:
    """The valid output of a chunk from its ``_lines``: every line but the ``dropped``
    records' and the blank ones, CRLF-terminated, with the ``changed`` records (keyed by their
    first line) written by ``csv.writer`` instead. A record over several lines has its other
    lines blanked by the caller."""
    for k in dropped:
        lines[k] = ""
    if changed:
        texts = _RowTexts()
        csv.writer(texts, lineterminator="\r\n").writerows(changed.values())
        for k, row_text in zip(changed, texts):
            lines[k] = row_text[:-2]
    kept = list(filter(None, lines))
    if kept:
        kept.append("")
    return "\r\n".join(kept).encode("utf-8")


def header_rows(header: list[str], output_header: list[str]) -> tuple[bytes, bytes]:
    """The first line of the valid file and of the error file (original header + ``_line``,
    ``_errors``), as CRLF-terminated CSV bytes."""
    return _csv_bytes([list(output_header)]), _csv_bytes([[*header, "_line", "_errors"]])


def _shown(value: str) -> str:
    """A cell as written to the error file: undecodable bytes as ``\\xNN`` so the file stays
    UTF-8. (NUL is kept in files but escaped in ``errors_sample``: Postgres jsonb refuses it.)"""
    if _SURROGATE.search(value):
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _cell_problems(row: list[str], header: list[str], bad_bytes: bool,
                   has_nul: bool) -> list[tuple[str | None, str, str]]:
    problems: list[tuple[str | None, str, str]] = []
    for i, cell in enumerate(row):
        column = header[i] if i < len(header) else None
        if bad_bytes and _SURROGATE.search(cell):
            problems.append((column, "encoding_error", "the value is not valid text in the "
                             "upload's encoding"))
        if has_nul and "\x00" in cell:
            problems.append((column, "nul_byte", "the value contains a NUL byte"))
    return problems


def process_chunk(chunk: Chunk, ctx_key: str, *,
                  sample_limit: int = DEFAULT_SAMPLE_LIMIT) -> ChunkResult:
    """Check every record of ``chunk`` with the checker registered under ``ctx_key``."""
    allow_long_fields()
    checker: RowChecker = get_checker(ctx_key)
    header = list(checker.header)
    ncols = len(header)
    col_index = {name: i for i, name in enumerate(header)}
    check = checker.check
    # See shape.py: which cells are columns (trailing blank cells, dropped header columns).
    shape = getattr(checker, "shape", None) or HeaderShape(tuple(header), ncols)
    output_format = getattr(checker, "output_format", None)  # the storage layout's, if any
    try:
        text = chunk.data.decode("utf-8")
        bad_bytes = False
    except UnicodeDecodeError:
        text = chunk.data.decode("utf-8", "surrogateescape")
        bad_bytes = True
    has_nul = "\x00" in text
    slow = bad_bytes or has_nul
    # Without any quote in the text no cell can hold a delimiter or line break, so the valid
    # rows can be joined instead of going through csv.writer (checked in _plain_csv_bytes).
    delimiter = shape.delimiter
    plain = ncols > 1 and not slow and '"' not in text and (delimiter == "," or "," not in text)

    valid: list[list[str]] = []
    rejected: list[list[str]] = []
    sample: list[dict[str, Any]] = []
    rows = 0
    rewritten = 0

    def reject(row: list[str], original: list[str], line: int, errors: list) -> None:
        cells = [_shown(c) for c in row] if bad_bytes else row
        description = "; ".join(f"{_ROW_COLUMN if col is None else col}: {code}: {msg}"
                                for col, code, msg in errors)
        rejected.append(output_format.error_row(cells, line, description) if output_format
                        else [*cells, str(line), description])
        for col, code, msg in errors:
            if len(sample) >= sample_limit:
                break
            if col is None:
                value = ",".join(_shown(c) for c in original) if bad_bytes \
                    else ",".join(original)
            else:
                i = col_index.get(col)
                value = cells[i] if i is not None and i < len(cells) else ""
            # Cut to size: the sample is answered and stored (the error file has it all).
            sample.append({"line": line, "column": col if col is None else clip(col),
                           "value": clip(value.replace("\x00", "\\x00")),
                           "code": code, "message": clip(msg)})

    base = chunk.first_line
    summarise = getattr(checker, "summarise", None)
    # A chunk whose valid rows the checks leave as they are is written as it arrived, less its
    # rejected and blank lines (``_as_sent``): no row is serialised again, nor kept (unless
    # ``summarise`` needs them: one with ``from_csv`` reads the valid output's bytes of a chunk
    # without quotes instead, processing/csvbytes.py). In a chunk with quotes, only the records
    # that hold a quote or span lines go through csv.writer: a one-line record without a quote
    # is exactly what csv.writer would write for it (no cell can hold a comma, quote or line
    # break).
    sendable = (ncols > 1 and not slow and delimiter == "," and output_format is None
                and shape.width == ncols and getattr(checker, "rows_unaltered", False))
    lines = _lines(text) if plain or sendable else None
    # A plain chunk's lines are split at the delimiter (``_split``); anything else goes through
    # csv.reader (a plain chunk with a lone CR too: csv.reader's idea of a line end).
    reader: Any = (_split(lines, delimiter) if plain and lines is not None
                   else csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    as_sent = sendable and lines is not None
    summarise_csv = getattr(summarise, "from_csv", None) if as_sent and plain else None
    keep = not as_sent or (summarise is not None and summarise_csv is None)
    changed: dict[int, list[str]] = {}  # as_sent: valid rows to write with csv.writer
    dropped: list[int] = []  # as_sent: the rejected records' first lines in the chunk
    if plain:
        # Without quotes each record is one line: record k is on line ``base + k``. A checker
        # that can tell at once which rows of the chunk need its whole check (cQube grammars:
        # keys checked column by column, processing/rowcheck.py) gets the chunk parsed first.
        unsure = getattr(checker, "unsure", None)
        records: Any = reader
        unsure_rows = None
        k, blank = -1, 0
        try:
            if unsure is not None:
                records = list(reader)
                if set(map(len, records)) == {ncols}:
                    unsure_rows = set(unsure(records))
                    known = checker.check_known
            for k, row in enumerate(records):
                if len(row) == ncols:  # the common case first, in as few steps as it takes
                    errors, out = check(row) if unsure_rows is None or k in unsure_rows \
                        else known(row)
                    if not errors and out is row:
                        if keep:
                            valid.append(row)
                        continue
                    original = row
                elif not row:
                    blank += 1
                    continue
                else:
                    original = row
                    row, errors = shape.fit(row)
                    if not errors:  # not uniform: ``unsure`` named no rows
                        errors, out = check(row)
                if errors:
                    reject(row, original, base + k, errors)
                    dropped.append(k)
                    continue
                if out is not row:  # a plugin's transform: let csv.writer quote it
                    plain = False
                    if type(out) is RewrittenRow:
                        rewritten += 1
                if keep:
                    valid.append(out)
                if as_sent:
                    changed[k] = out
        except csv.Error as exc:  # the failing record is on the reader's last line
            line = base + max(getattr(reader, "line_num", 1) - 1, 0)
            raise FileRejected(f"line {line}: not parseable as CSV: {exc}",
                               code="not_a_csv", line=line) from None
        rows = k + 1 - blank
        n_valid = rows - len(dropped)
    else:
        prev = 0
        try:
            for row in reader:
                start = prev  # the record's first line in the chunk
                prev = reader.line_num
                if not row:
                    continue
                rows += 1
                if as_sent and prev - start > 1:  # its other lines go with it
                    lines[start + 1:prev] = [""] * (prev - start - 1)
                errors = _cell_problems(row, header, bad_bytes, has_nul) if slow else []
                original = row
                if len(row) != ncols:
                    row, problems = shape.fit(row)
                    errors += problems
                if not errors:
                    errors, out = check(row)
                    if not errors:
                        if out is not row and type(out) is RewrittenRow:
                            rewritten += 1
                        if keep:
                            valid.append(out)
                        if as_sent and (out is not original or prev - start > 1
                                        or '"' in lines[start]):
                            changed[start] = out
                        continue
                reject(row, original, base + start, errors)
                dropped.append(start)
        except csv.Error as exc:
            raise FileRejected(f"line {base + prev}: not parseable as CSV: {exc}",
                               code="not_a_csv", line=base + prev) from None
        n_valid = rows - len(rejected)
    if as_sent:
        valid_csv = _as_sent(lines, dropped, changed)
    elif output_format is not None:
        # "plain" (no '"' in the chunk) plus no "'" means no cell holds a quote or line break.
        valid_csv = output_format.valid_bytes(valid, plain and "'" not in text)
    else:
        valid_csv = _plain_csv_bytes(valid, ncols) if plain else None
    if valid_csv is None:
        valid_csv = _csv_bytes(valid)
    # A checker may summarise the chunk's valid rows as well (the datasets' partial aggregates).
    partials = None
    if summarise is not None and n_valid:
        partials = summarise(valid) if summarise_csv is None else summarise_csv(valid_csv, ncols)
    return ChunkResult(seq=chunk.seq, rows=rows, valid_rows=n_valid,
                       invalid_rows=len(rejected), valid_csv=valid_csv,
                       errors_csv=_csv_bytes(rejected), errors_sample=sample,
                       last_line=chunk.first_line + chunk.lines - 1, rewritten_rows=rewritten,
                       partials=partials)
