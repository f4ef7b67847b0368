"""An upload's ``unknown_reference`` errors grouped by dimension, read from its error file.

The file is streamed (never held whole); distinct keys are counted exactly up to
``MAX_DISTINCT`` per dimension, then the count says "at least".
"""

from __future__ import annotations

import codecs
import csv
from typing import Any, AsyncIterator

from .grammars import EventGrammar

MAX_DISTINCT = 100_000
EXAMPLES = 10
ERROR_COLUMNS = ("_errors", "error_description")  # native, cqube layout


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    rest = ""
    async for chunk in chunks:
        text = rest + decoder.decode(chunk)
        lines = text.splitlines(keepends=True)
        rest = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        for line in lines:
            yield line
    rest += decoder.decode(b"", final=True)
    if rest:
        yield rest


async def unknown_references(grammar: EventGrammar, chunks: AsyncIterator[bytes],
                             quote: str = '"') -> list[dict[str, Any]]:
    """Per dimension column of ``grammar``: rows with an unknown key, distinct keys, examples."""
    groups: dict[str, dict[str, Any]] = {}
    header: list[str] | None = None
    buffer = ""
    async for line in _lines(chunks):
        buffer += line
        if buffer.count(quote) % 2:  # inside a quoted cell that spans lines: read on
            continue
        row = next(csv.reader([buffer], quotechar=quote), [])
        buffer = ""
        if header is None:
            header = row
            where = {name: i for i, name in enumerate(header)}
            errors_at = next((where[c] for c in ERROR_COLUMNS if c in where), None)
            columns = [(c, where[c.name]) for c in grammar.dimension_columns if c.name in where]
            continue
        if errors_at is None or errors_at >= len(row):
            continue
        text = row[errors_at]
        for col, i in columns:
            if f"{col.name}: unknown_reference:" not in text or i >= len(row):
                continue
            g = groups.setdefault(col.name, {"dimension": col.dimension, "column": col.name,
                                             "rows": 0, "keys": set(), "more": False})
            g["rows"] += 1
            if len(g["keys"]) < MAX_DISTINCT:
                g["keys"].add(row[i])
            elif row[i] not in g["keys"]:
                g["more"] = True
    out = []
    for g in groups.values():
        keys = g.pop("keys")
        more = g.pop("more")
        out.append({**g, "distinct_keys": len(keys), "distinct_keys_at_least": more,
                    "examples": sorted(keys)[:EXAMPLES]})
    return sorted(out, key=lambda g: (-g["rows"], g["column"]))
