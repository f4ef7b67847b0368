"""Which cells of a physical CSV row are the file's columns, and which are dropped.

A header may end with columns that are not data:

* empty names (``a,b,c,,,``, as Excel exports a sheet whose formatting ran further right): those
  columns are dropped, with a warning. Their cells must be blank; a value under an empty name
  is a row error (``value_in_unnamed_column``), never silently lost.
* ``_line`` and ``_errors``: the two columns this server adds to an error file (in the cqube
  storage layout, ``error_description``). A user who fixed the rows of an error file uploads it
  again as it is; those columns (and their cells, whatever they hold) are dropped before
  validation, and the answer says so in a warning.

``HeaderShape.fit(row)`` maps one physical row onto the named columns; the worker calls it only
for rows whose length differs from the named columns (never on the hot path of a plain file).
Every file has a shape: rows may end with any number of blank cells past the header (Excel
again), and a row shorter than the header only by cells under dropped columns is not ragged.
A ragged row is fitted to the header (padded with blanks, or cut with the cut cells quoted in its
error message), so that the error file stays a valid CSV under its header.
``shaped_checker`` wraps a row checker built for the named columns with its shape: the worker
finds it as the checker's ``shape`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ingest_server.csvstream.checkers import CheckerRecipe

# The columns an error file adds: ``worker.header_rows`` (the native layout), then
# ``cqube_format.ERROR_COLUMN`` (the cqube layout; not imported: workers of the native layout
# never load that module). Either is dropped, whatever the layout.
ERROR_COLUMNS = ("_line", "_errors")
ERROR_COLUMN_SETS = (ERROR_COLUMNS, ("error_description",))

RowError = tuple[str | None, str, str]


@dataclass(frozen=True)
class HeaderShape:
    """``names``: the columns read; ``width``: cells in the physical header; ``skip``: cells
    right after the names that are dropped whatever they hold (an error file's ``_line`` and
    ``_errors``). ``warnings``: what the upload answer reports about the header."""

    names: tuple[str, ...]
    width: int
    skip: int = 0
    warnings: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    delimiter: str = ","  # what separates the file's cells (its output is always ",")

    @property
    def trivial(self) -> bool:
        return self.width == len(self.names) and self.delimiter == ","

    def fit(self, row: list[str]) -> tuple[list[str], list[RowError]]:
        """The row's cells under ``names`` (padded with blanks when short) and the row's shape
        errors. Cells after ``names`` + ``skip`` must be blank."""
        n = len(self.names)
        if len(row) < n:
            return row + [""] * (n - len(row)), [_ragged(n, self.width, row)]
        errors: list[RowError] = []
        for i in range(n + self.skip, len(row)):
            if row[i].strip():
                if i >= self.width:
                    return row[:n], [_ragged(n, self.width, row)]
                errors.append((None, "value_in_unnamed_column",
                               f"column {i + 1} has no name but holds {_quoted([row[i]])}"))
        return row[:n], errors


_MAX_SHOWN = 200


def _quoted(cells: list[str]) -> str:
    text = ",".join(repr(c) for c in cells)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "..."


def _ragged(n: int, width: int, row: list[str]) -> RowError:
    expected = f"{n}" if width == n else f"{n} (plus {width - n} dropped)"
    message = f"expected {expected} cells, got {len(row)}"
    if len(row) > n:
        message += f"; cells past the header: {_quoted(row[n:])}"
    return None, "ragged_row", message


def shape_header(header: list[str], declared: Any = (), delimiter: str = ",") -> HeaderShape:
    """The shape of a physical header. ``declared`` (the spec's column names) keeps a spec that
    really has a column called ``_line`` or ``_errors`` from losing it."""
    names = list(header)
    warnings: list[dict[str, Any]] = []
    skip = 0
    trailing = 0
    while names and not names[-1]:
        names.pop()
        trailing += 1
    if trailing:
        warnings.append({
            "code": "trailing_empty_columns",
            "message": f"{trailing} column(s) with no name at the end of the header (as Excel "
                       f"exports them) were dropped",
            "details": {"count": trailing, "positions": list(range(len(names) + 1,
                                                                   len(header) + 1))}})
    for columns in ERROR_COLUMN_SETS:
        if (len(names) > len(columns) and tuple(names[-len(columns):]) == columns
                and not any(c in declared for c in columns)):
            del names[-len(columns):]
            skip = len(columns)
            warnings.append({
                "code": "error_columns_dropped",
                "message": f"this is an error file of ours uploaded again: its column(s) "
                           f"{' and '.join(columns)} were dropped before validation",
                "details": {"columns": list(columns)}})
            break
    return HeaderShape(tuple(names), len(header), skip, tuple(warnings), delimiter)


class ShapedChecker:
    """A row checker for ``shape.names``, carrying for the worker the shape and the
    ``output_format`` of the storage layout (None: plain RFC 4180)."""

    def __init__(self, inner: Any, shape: HeaderShape, output_format: Any = None) -> None:
        self._inner = inner
        self.shape = shape
        self.output_format = output_format

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def shaped_checker(shape: HeaderShape, inner: CheckerRecipe,
                   output_format: Callable[[list[str]], Any] | None = None) -> ShapedChecker:
    """A module-level, picklable factory (see ``checkers.CheckerRecipe``). ``output_format``: a
    picklable factory of the layout's file format (``ingest.layout``), built here from the
    checker's output header."""
    checker = inner()
    return ShapedChecker(checker, shape,
                         output_format(checker.output_header) if output_format else None)
