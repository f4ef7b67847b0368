"""Which cells of a physical CSV row are the file's columns, and which are dropped.

A header may end with columns that are not data:

* ``_line`` and ``_errors``: the two columns this server adds to an error file. A user who fixed
  the rows of an error file uploads it again as it is; those two columns (and their cells,
  whatever they hold) are dropped before validation, and the answer says so in a warning.

``HeaderShape.fit(row)`` maps one physical row onto the named columns; the worker calls it only
for rows whose length differs from the named columns (never on the hot path of a plain file).
``shaped_checker`` wraps a row checker built for the named columns with its shape: the worker
finds it as the checker's ``shape`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest_server.csvstream.checkers import CheckerSpec

# The columns ``worker.header_rows`` appends to an error file.
ERROR_COLUMNS = ("_line", "_errors")

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

    @property
    def trivial(self) -> bool:
        return self.width == len(self.names)

    def fit(self, row: list[str]) -> tuple[list[str], list[RowError]]:
        """The row's cells under ``names`` (padded with blanks when short) and the row's shape
        errors. Cells after ``names`` + ``skip`` must be blank."""
        n = len(self.names)
        if len(row) < n:
            return row + [""] * (n - len(row)), [_ragged(n, self.width, row)]
        for i in range(n + self.skip, len(row)):
            if row[i].strip():
                return row[:n], [_ragged(n, self.width, row)]
        return row[:n], []


def _ragged(n: int, width: int, row: list[str]) -> RowError:
    expected = f"{n}" if width == n else f"{n} (plus {width - n} dropped)"
    return None, "ragged_row", f"expected {expected} cells, got {len(row)}"


def shape_header(header: list[str], declared: Any = ()) -> HeaderShape:
    """The shape of a physical header. ``declared`` (the spec's column names) keeps a spec that
    really has a column called ``_line`` or ``_errors`` from losing it."""
    names = list(header)
    warnings: list[dict[str, Any]] = []
    skip = 0
    tail = tuple(names[-len(ERROR_COLUMNS):])
    if (len(names) > len(ERROR_COLUMNS) and tail == ERROR_COLUMNS
            and not any(c in declared for c in ERROR_COLUMNS)):
        del names[-len(ERROR_COLUMNS):]
        skip = len(ERROR_COLUMNS)
        warnings.append({
            "code": "error_columns_dropped",
            "message": "this is an error file of ours uploaded again: its columns _line and "
                       "_errors were dropped before validation",
            "details": {"columns": list(ERROR_COLUMNS)}})
    return HeaderShape(tuple(names), len(header), skip, tuple(warnings))


class ShapedChecker:
    """A row checker for ``shape.names``, carrying the shape for the worker."""

    def __init__(self, inner: Any, shape: HeaderShape) -> None:
        self._inner = inner
        self.shape = shape

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def shaped_checker(shape: HeaderShape, inner: CheckerSpec) -> ShapedChecker:
    """Top-level, picklable factory (see ``checkers.CheckerSpec``)."""
    return ShapedChecker(inner(), shape)
