"""JSON rows as a CSV byte stream, so they take the same pass as an uploaded CSV.

``POST /api/ingestion/event|dimension|dataset`` carry rows as JSON objects. Turned into CSV text
here (the header is every key in order of first appearance), they are validated by the same
engine, land under the same keys and are tracked by the same upload record as a CSV upload.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

from ..errors import BadRequest

CHUNK_BYTES = 256 * 1024
# route -> (name field, rows field, program type)
ROUTES = {"event": ("event_name", "event", "event"),
          "dimension": ("dimension_name", "dimension", "dimension"),
          "dataset": ("dataset_name", "dataset", "dataset")}


@dataclass(frozen=True)
class JsonRows:
    name: str
    program: str | None
    rows: list[dict[str, Any]]
    header: list[str]


def parse_body(route: str, body: Any) -> JsonRows:
    """Check the body's shape: ``{"<kind>_name", "program_name"?, "<kind>": [{col: value}, ...]}``."""
    name_field, rows_field, _ = ROUTES[route]
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_body")
    name = body.get(name_field)
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"{name_field} is required", code="missing_field", field=name_field)
    program = body.get("program_name")
    if program is not None and not isinstance(program, str):
        raise BadRequest("program_name must be a string", code="invalid_field",
                         field="program_name")
    rows = body.get(rows_field)
    if not isinstance(rows, list) or not rows:
        raise BadRequest(f"{rows_field} must be a non-empty list of objects",
                         code="missing_field" if rows is None else "invalid_field",
                         field=rows_field)
    header: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(f"{rows_field}[{i}] is not an object", code="invalid_field",
                             field=rows_field, index=i)
        header.update(dict.fromkeys(row))
    if "" in header:
        raise BadRequest("a column name is empty", code="invalid_field", field=rows_field)
    return JsonRows(name=name.strip(), program=program or None, rows=rows, header=list(header))


def cell(value: Any) -> str:
    """A JSON value as CSV text: what a CSV export of the same data would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # numbers as JSON writes them; objects as JSON


async def csv_chunks(data: JsonRows, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The rows as UTF-8 CSV (RFC 4180), in chunks of about ``chunk_bytes``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(data.header)
    for row in data.rows:
        writer.writerow([cell(row.get(col)) for col in data.header])
        if buf.tell() >= chunk_bytes:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")
