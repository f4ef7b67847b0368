"""Loading a landed dimension file into ``dimensions.<dim>`` (CQUBE-PROCESSING.md §2.2, §6).

The valid object is streamed with COPY into a temporary table of text columns, then one
``INSERT … SELECT … ON CONFLICT (key) DO UPDATE`` upserts it: a later file updates rows, never
duplicates them, and values arrive exactly as sent (COPY takes them as data, never as SQL, so a
``'``, a ``"``, a comma inside quotes or a leading zero survive). Within one file the last row of
a key wins, as a later file's would.

One reading is cQube's: a value wholly wrapped in single quotes (``'S001'``, the way cQube's
producers write text, CQUBE-PROCESSING.md §1.5) is stored as the text inside (``S001``), as
cQube's own loader (polars with ``'`` as its quote character) stores it; event keys are matched
the same way (``keys.unquoted``). A single quote anywhere else in a value is kept.
"""

from __future__ import annotations

import csv
import io
from typing import AsyncIterator

import asyncpg

from ..errors import FileRejected
from .cqube_schema import dimension_table, ident
from .grammars import DimensionGrammar

MAX_HEADER_BYTES = 4 * 1024 * 1024


async def _with_header(chunks: AsyncIterator[bytes], quote: str) -> tuple[list[str],
                                                                           AsyncIterator[bytes]]:
    """The file's header, and an iterator that still yields the whole file."""
    head = b""
    it = chunks.__aiter__()
    while b"\n" not in head:
        try:
            head += await it.__anext__()
        except StopAsyncIteration:
            break
        if len(head) > MAX_HEADER_BYTES:
            raise FileRejected("the dimension file's header is too long", code="line_too_long")
    first = head.split(b"\n", 1)[0].decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(first), quotechar=quote), [])

    async def again() -> AsyncIterator[bytes]:
        if head:
            yield head
        async for chunk in it:
            yield chunk

    return header, again()


Q, QQ = "''''", "''''''"  # the SQL literals of one single quote, of two


def unquoted_sql(col: str) -> str:
    """``keys.unquoted`` in SQL: a value wholly in single quotes (cQube's producers write text
    so) is the text inside, two quotes in it read as one; any other value as it is."""
    return (f"CASE WHEN length({col}) >= 2 AND left({col}, 1) = {Q} AND right({col}, 1) = {Q} "
            f"THEN replace(substr({col}, 2, length({col}) - 2), {QQ}, {Q}) "
            f"ELSE {col} END")


def _value(column: str, type_: str) -> str:
    col = unquoted_sql("t." + ident(column))
    if type_ == "string":
        return col
    sql_type = {"number": "float8", "integer": "integer", "date": "date"}[type_]
    return f"NULLIF(btrim({col}), '')::{sql_type}"


def upsert_sql(grammar: DimensionGrammar, temp: str) -> str:
    key = ident(grammar.key_column)
    cols = [c for c in grammar.columns]
    names = ", ".join(ident(c.name) for c in cols)
    values = ", ".join(_value(c.name, c.type) for c in cols)
    updates = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in cols
                        if c.name != grammar.key_column) or f"{key} = EXCLUDED.{key}"
    stored_key = unquoted_sql(f"t.{key}")
    return (f"INSERT INTO {dimension_table(grammar.name)} ({names}) "
            f"SELECT DISTINCT ON ({stored_key}) {values} FROM {temp} AS t "
            f"ORDER BY {stored_key}, t.ord DESC "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}")



async def load_dimension(conn: asyncpg.Connection, grammar: DimensionGrammar,
                         chunks: AsyncIterator[bytes], *, quote: str = '"') -> int:
    """Upsert the CSV in ``chunks`` (header first) into the dimension's table; the number of
    distinct keys written. Runs in the caller's transaction: all rows or none."""
    header, body = await _with_header(chunks, quote)
    missing = [c.name for c in grammar.columns if c.name not in header]
    if missing:
        raise FileRejected(f"the dimension file lacks column(s) {', '.join(missing)}",
                           code="missing_column", columns=missing)
    temp = "ingest_dimension_load"
    # Every column of the file as text (extra columns are read and left out of the INSERT).
    names = [f"c{i}" if h not in {c.name for c in grammar.columns} else h
             for i, h in enumerate(header)]
    cols = ", ".join(f"{ident(n)} text" for n in names)
    await conn.execute(f"CREATE TEMPORARY TABLE {temp} (ord bigserial, {cols}) ON COMMIT DROP")
    await conn.copy_to_table(temp, source=body, columns=[n.lower() for n in names],
                             format="csv", header=True, quote=quote, encoding="utf-8")
    status = await conn.execute(upsert_sql(grammar, temp))
    return int(status.rsplit(" ", 1)[-1])
