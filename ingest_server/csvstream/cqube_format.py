"""The file format of ``storage.layout = "cqube"``: what cQube's processing reads (CQUBE.md §3).

Valid file: a header line, then one line per row, ``\\n``-terminated. Text cells are wrapped in
single quotes (``'Andhra Pradesh'``); cQube's processing reads them with ``'`` as the quote
character. Decisions for what cQube leaves undefined:

* a ``'`` inside a text cell is doubled (``'Children''s Day'``): a CSV reader with
  ``quotechar="'"`` (Python's ``csv``, pandas) reads the original text back;
* a line break inside a text cell (``\\r\\n``, ``\\n`` or ``\\r``) becomes one space, as cQube
  removes newlines so that a row stays one line;
* number and integer columns are written as plain numbers: plain decimal text as the user wrote
  it (``12.50``, ``-3``), anything else as the number it is (``1e3`` → ``1000``, `` 5 `` →
  ``5``, ``+1`` → ``1``); boolean columns as ``true``/``false``; a blank cell of those columns is
  written empty (no value, never 0);
* a header name is written as it is, single-quoted only if it holds a comma, a quote or a line
  break.

Error file: RFC 4180 CSV (``"`` quoting, ``\\r\\n``) with the original columns plus
``error_description`` (our ``column: code: message; …``), no line numbers.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Callable, Sequence

from ingest_server.validation.coercers import BUILTIN_COERCERS

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NEEDS_QUOTES = re.compile(r"[,'\r\n]")
ERROR_COLUMN = "error_description"


def quote_text(value: str) -> str:
    if "\n" in value or "\r" in value:
        value = _LINE_BREAK.sub(" ", value)
    return "'" + value.replace("'", "''") + "'"


def _plain_number(value: str) -> str:
    number = BUILTIN_COERCERS["number"](value)
    if number is None:
        return ""
    if isinstance(number, float):
        if number.is_integer() and abs(number) < 1e21:  # as JavaScript prints it
            return str(int(number))
        return repr(number)
    if isinstance(number, int):
        return str(number)
    return quote_text(value)  # cannot happen for a valid row; stay readable if it does


def _plain_boolean(value: str) -> str:
    flag = BUILTIN_COERCERS["boolean"](value)
    if flag is None:
        return ""
    return ("true" if flag else "false") if isinstance(flag, bool) else quote_text(value)


_NUMERIC = frozenset({"number", "integer", "float"})


def _number_cell(cell: str) -> str:
    return cell if _PLAIN_NUMBER(cell) else _plain_number(cell)


def _writer_for(rules: Any) -> Callable[[str], str]:
    kinds = rules.get("type") if isinstance(rules, dict) else None
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or ())
    if kinds and all(k in _NUMERIC for k in kinds):
        return _number_cell
    if kinds == ["boolean"]:
        return _plain_boolean
    return quote_text


# A number written as plain decimal text stays as the user wrote it (``12.50``, ``-3``);
# anything else that parses (``1e3``, `` 5 ``, ``+1``) is written as the number it is.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?").fullmatch


class CqubeFormat:
    """Serialises one file's rows the cQube way; built from the output header and the schema
    (in each worker process: it holds generated code, like the compiled checks)."""

    def __init__(self, output_header: Sequence[str], schema: dict) -> None:
        self.output_header = list(output_header)
        self._writers = [_writer_for(schema.get(name)) for name in self.output_header]
        # One generated f-string per row for the usual chunk, in which no cell holds a quote or
        # a line break (the worker knows from the chunk's text): text cells need no escaping.
        namespace: dict[str, Any] = {"P": _PLAIN_NUMBER, "N": _plain_number}
        parts = []
        for i, writer in enumerate(self._writers):
            if writer is quote_text:
                parts.append(f"'{{r[{i}]}}'")
            elif writer is _number_cell:
                parts.append(f"{{r[{i}] if P(r[{i}]) else N(r[{i}])}}")
            else:
                namespace[f"W{i}"] = writer
                parts.append(f"{{W{i}(r[{i}])}}")
        source = ("def lines(rows):\n    return \"\\n\".join([f\"" + ",".join(parts)
                  + "\" for r in rows])\n")
        exec(compile(source, "<cqube format>", "exec"), namespace)  # noqa: S102 - our own code
        self._simple_lines = namespace["lines"]

    def valid_head(self) -> bytes:
        names = [quote_text(n) if _NEEDS_QUOTES.search(n) else n for n in self.output_header]
        return (",".join(names) + "\n").encode("utf-8")

    def valid_bytes(self, rows: list[list[str]], simple: bool = False) -> bytes:
        """The rows as valid-file lines. ``simple``: the caller knows that no cell holds a
        ``'``, ``"``, CR or LF (and every row has the header's cells)."""
        if not rows:
            return b""
        if simple:
            return (self._simple_lines(rows) + "\n").encode("utf-8")
        writers = self._writers
        lines = [",".join([w(c) for w, c in zip(writers, row)]) for row in rows]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @staticmethod
    def error_head(header: Sequence[str]) -> bytes:
        return _rfc4180([[*header, ERROR_COLUMN]])

    @staticmethod
    def error_row(cells: list[str], line: int, description: str) -> list[str]:
        return [*cells, description]


def _rfc4180(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")
