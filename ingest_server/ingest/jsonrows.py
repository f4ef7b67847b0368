"""JSON rows as a CSV byte stream, so they take the same pass as an uploaded CSV.

``POST /api/ingestion/event|dimension|dataset`` carry rows as JSON objects. Turned into CSV text
here (the header is every key in order of first appearance), they are validated by the same
engine, land under the same keys and are tracked by the same upload record as a CSV upload.

The body is spooled to disk by the view and read here in a thread, never parsed whole: the top
level of the document is walked by hand and each row decoded and checked on its own
(``raw_decode``), so memory holds the body's text and one row (not the 25× its size of a whole
parsed document), and the event loop gets the GIL back between rows (no C call over the whole
text: a regex over 16 MiB holds the GIL for a second on a busy machine). Two passes: the first checks the shape and
collects the header (every key, in order of first appearance), the second writes the CSV. The
same checks as every client JSON (``safejson``): finite numbers, bounded depth, no lone
surrogates.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from .. import safejson
from ..errors import BadRequest

CHUNK_BYTES = 256 * 1024
# kind (the last segment of the path) -> (name field, rows field, program type)
BODIES = {"event": ("event_name", "event", "event"),
          "dimension": ("dimension_name", "dimension", "dimension"),
          "dataset": ("dataset_name", "dataset", "dataset")}
_WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class JsonRows:
    name: str
    program: str | None
    header: list[str]
    count: int


def _too_deep() -> BadRequest:
    return BadRequest(f"the JSON is nested deeper than {safejson.MAX_DEPTH} levels",
                      code="invalid_json", max_depth=safejson.MAX_DEPTH)


def _invalid(message: str, at: int) -> BadRequest:
    return BadRequest(f"body is not valid JSON: {message} (char {at})", code="invalid_json")


class _Document:
    """The top level of ``{"<kind>_name": ..., "<kind>": [row, ...], ...}``, walked by hand."""

    def __init__(self, text: str, rows_field: str) -> None:
        self.text = text
        self.rows_field = rows_field
        self.decoder = safejson.decoder()

    def _ws(self, i: int) -> int:
        return _WS.match(self.text, i).end()  # type: ignore[union-attr]

    def _value(self, i: int) -> tuple[Any, int]:
        """The value at ``i``, checked as ``safejson`` checks a document (depth, surrogates).
        Checked value by value, never over the whole text at once: each check is one C call
        holding the GIL, and a row is small."""
        try:
            value, end = self.decoder.raw_decode(self.text, i)
        except ValueError as e:  # JSONDecodeError, or an integer over Python's digit limit
            raise _invalid(str(e)[:200], i) from None
        except RecursionError:
            raise _too_deep() from None
        if self.text[i] in "[{\"":
            source = self.text[i:end]
            safejson.check_document(source, safejson.MAX_DEPTH - 2)  # inside {"rows": [...]}
        return value, end

    def _expect(self, i: int, chars: str) -> str:
        char = self.text[i:i + 1]
        if not char or char not in chars:
            raise _invalid(f"expected {' or '.join(repr(c) for c in chars)}", i)
        return char

    def walk(self) -> Iterator[tuple[str, Any, Any]]:
        """``("field", key, value)`` for each top-level member but an array of rows;
        ``("rows", None, None)`` where that array starts, then ``("row", index, row)`` for each
        row (a list of rows is never built)."""
        text = self.text
        i = self._ws(0)
        if text[i:i + 1] != "{":
            raise BadRequest("the body must be a JSON object", code="invalid_body")
        i = self._ws(i + 1)
        if text[i:i + 1] == "}":
            i += 1
        else:
            while True:
                self._expect(i, '"')
                key, i = self._value(i)
                i = self._ws(i)
                self._expect(i, ":")
                i = self._ws(i + 1)
                if key == self.rows_field and text[i:i + 1] == "[":
                    i = yield from self._rows(i)
                else:
                    value, i = self._value(i)
                    yield "field", key, value
                i = self._ws(i)
                if self._expect(i, ",}") == "}":
                    i += 1
                    break
                i = self._ws(i + 1)
        if self._ws(i) != len(text):
            raise _invalid("extra data after the object", i)

    def _rows(self, i: int) -> Iterator[tuple[str, Any, Any]]:
        yield "rows", None, None
        i = self._ws(i + 1)
        if self.text[i:i + 1] == "]":
            return i + 1
        index = 0
        while True:
            row, i = self._value(i)
            yield "row", index, row
            index += 1
            i = self._ws(i)
            if self._expect(i, ",]") == "]":
                return i + 1
            i = self._ws(i + 1)


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e}", code="invalid_json") from None
    return text


def scan_body(kind: str, path: Path) -> JsonRows:
    """Check the body's shape: ``{"<kind>_name", "program_name"?, "<kind>": [{col: value}, ...]}``
    (blocking: run it in a thread)."""
    name_field, rows_field, _ = BODIES[kind]
    fields: dict[str, Any] = {}
    header: dict[str, None] = {}
    count, bad_row, rows_seen = 0, None, 0
    for what, key, value in _Document(_text(path), rows_field).walk():
        if what == "field":
            fields[key] = value
            rows_seen += key == rows_field  # present, but not an array
        elif what == "rows":
            rows_seen += 1
        else:
            if isinstance(value, dict):
                header.update(dict.fromkeys(value))
            elif bad_row is None:
                bad_row = key
            count += 1
    if rows_seen > 1:
        raise BadRequest(f"{rows_field} is given more than once", code="invalid_body",
                         field=rows_field)
    name = fields.get(name_field)
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"{name_field} is required", code="missing_field", field=name_field)
    program = fields.get("program_name")
    if program is not None and not isinstance(program, str):
        raise BadRequest("program_name must be a string", code="invalid_field",
                         field="program_name")
    if not rows_seen or rows_field in fields or not count:
        raise BadRequest(f"{rows_field} must be a non-empty list of objects",
                         code="missing_field" if not rows_seen else "invalid_field",
                         field=rows_field)
    if bad_row is not None:
        raise BadRequest(f"{rows_field}[{bad_row}] is not an object", code="invalid_field",
                         field=rows_field, index=bad_row)
    if "" in header:
        raise BadRequest("a column name is empty", code="invalid_field", field=rows_field)
    return JsonRows(name=name.strip(), program=program or None, header=list(header),
                    count=count)


def cell(value: Any) -> str:
    """A JSON value as CSV text: what a CSV export of the same data would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # numbers as JSON writes them; objects as JSON


def _csv_pieces(kind: str, path: Path, header: list[str], chunk_bytes: int) -> Iterator[bytes]:
    """The rows of a body ``scan_body`` accepted, as UTF-8 CSV (RFC 4180) in pieces."""
    rows_field = BODIES[kind][1]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for what, _, row in _Document(_text(path), rows_field).walk():
        if what != "row":
            continue
        writer.writerow([cell(row.get(col)) for col in header])
        if buf.tell() >= chunk_bytes:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


async def csv_chunks(kind: str, path: Path, data: JsonRows,
                     chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """``_csv_pieces``, each produced in a thread. A piece being made when the consumer stops
    is waited for (milliseconds) before the generator is closed, never closed mid-run."""
    pieces = _csv_pieces(kind, path, data.header, chunk_bytes)
    running: asyncio.Future | None = None
    try:
        while True:
            running = asyncio.ensure_future(asyncio.to_thread(next, pieces, None))
            piece = await asyncio.shield(running)
            running = None
            if piece is None:
                return
            yield piece
    finally:
        if running is not None:
            await asyncio.wait([running])
            if not running.cancelled():
                running.exception()  # retrieved: the consumer has gone, nobody else will
        pieces.close()
