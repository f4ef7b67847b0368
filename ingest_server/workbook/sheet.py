"""One sheet of a workbook on disk as UTF-8 CSV bytes, header row first (blocking: a thread).

* the sheet: ``sheet=NAME``, else the only visible worksheet (a "rules" sheet, as in our
  templates, does not count); several and no name is refused with their names
  (``sheet_required``), so the user says which one;
* the header is the first row with a non-blank cell, and the table starts at its first
  non-blank cell: a value left of it is refused (``cell_outside_table``) rather than dropped;
  rows come out one CSV line per sheet row
  (an empty row as an empty line, which the CSV reader skips), so with ``header_line`` as the
  header's line number every rejected row keeps its sheet row number. A cell holding a line
  break spans lines in CSV: the rows after it are then numbered that many lines further (their
  values are not changed);
* merged cells hold their value in the top-left cell only, as Excel's own CSV export.

How a sheet is read depends on its format (the upload is on disk: random access is what the
formats need):

* ``.xlsx``/``.xlsm`` are **streamed**: python-calamine-plus (calamine's XML reader, in Rust)
  decodes the sheet row by row from the compressed file, so memory holds a row, not the sheet
  (the shared strings are held, as every reader of the format must);
* ``.xls``, ``.xlsb`` and ``.ods``: python-calamine decodes the chosen sheet into its own
  compact cell array, so such a sheet is sized
  first and refused past ``max_cells`` (``workbook_too_large``).

Rows are converted to text a batch at a time.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping

import python_calamine as calamine

from ..errors import FileRejected
from .cells import Layout, cell_text, date_layouts
from .size import sheet_size

PIECE_BYTES = 256 * 1024
# A sheet of this name explains the others (our templates' "rules" sheet): it is read only when
# named with ``sheet=``, and does not count when choosing the sheet of data.
NOTES_SHEET = "rules"
_MAX_NAMES = 50


STREAMED = frozenset({"xlsx"})  # ``sniff.zip_kind``'s name for .xlsx and .xlsm


def _reader(kind: str) -> ModuleType:
    if kind in STREAMED:
        import python_calamine_plus  # noqa: PLC0415 - the streaming fork, for .xlsx only

        return python_calamine_plus
    return calamine


def _unreadable(kind: str, exc: BaseException) -> FileRejected:
    if isinstance(exc, _reader(kind).PasswordError):
        return FileRejected("the workbook is password-protected: save it without a password, "
                            "or export the sheet as CSV", code="workbook_unreadable",
                            workbook=kind)
    return FileRejected(f"the file looks like a {kind} workbook but cannot be read: "
                        f"{str(exc)[:200]}", code="workbook_unreadable", workbook=kind)


def _check_size(path: Path, kind: str, sheet: str, max_cells: int) -> None:
    size = sheet_size(path, kind, sheet)
    if size.cells <= max_cells:
        return
    raise FileRejected(f"sheet {sheet!r} has about {size.cells:,} cells (estimated from its "
                       f"{size.how}): a {kind} sheet may hold at most {max_cells:,} cells "
                       f"(limits.max_workbook_cells), because it is read whole into memory "
                       f"(.xlsx sheets stream, with no such limit). Save the sheet as .xlsx or "
                       f"CSV and upload that", code="workbook_too_large", status=413,
                       workbook=kind, sheet=sheet, cells=size.cells, rows=None, estimated=True,
                       max_cells=max_cells)


def _blank(row: list[Any]) -> bool:
    for v in row:
        if v is None or v == "":
            continue
        if isinstance(v, str) and not v.strip():
            continue
        return False
    return True


def column_name(index: int) -> str:
    """``A`` for column 0, ``AA`` for 26."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class SheetCsv:
    """A chosen sheet of an open workbook. ``open`` finds its header; ``pieces()`` yields CSV
    bytes."""

    def __init__(self, book: Any, kind: str, name: str, rows: Iterator[list[Any]]) -> None:
        self._book, self.kind, self.sheet_name = book, kind, name
        self._rows = rows
        self.header: list[str] = []
        self.header_line = 1
        self._edge = 0  # the header's first column: cells left of it are outside the table
        self._layouts: list[Layout] = []

    @classmethod
    def open(cls, path: Path, kind: str, sheet: str | None, schema: Mapping[str, Any],
             coercers: Mapping[str, Callable[[Any], Any]] | None = None,
             max_cells: int = 0) -> SheetCsv:
        """``max_cells``: refuse a larger sheet of a format read whole (0: no limit)."""
        reader = _reader(kind)
        try:
            book = reader.CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # noqa: BLE001 - calamine's errors are many and untyped
            raise _unreadable(kind, exc) from None
        try:
            chosen = cls._choose(book, sheet, reader)
            try:
                if kind in STREAMED:
                    rows = iter(book.stream_sheet_by_name(chosen))
                else:
                    if max_cells:
                        _check_size(path, kind, chosen, max_cells)
                    rows = iter(book.get_sheet_by_name(chosen).iter_rows())
            except FileRejected:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _unreadable(kind, exc) from None
            self = cls(book, kind, chosen, rows)
            self._find_header(schema, coercers)
            return self
        except BaseException:
            book.close()
            raise

    @staticmethod
    def _choose(book: Any, sheet: str | None, reader: ModuleType) -> str:
        names = list(book.sheet_names)
        if sheet:
            if sheet in names:
                return sheet
            folded = [n for n in names if n.strip().casefold() == sheet.strip().casefold()]
            if len(folded) == 1:
                return folded[0]
            raise FileRejected(f"the workbook has no sheet {sheet!r}; its sheets: "
                               f"{', '.join(names[:_MAX_NAMES])}", code="sheet_not_found",
                               sheet=sheet, sheets=names[:_MAX_NAMES])
        visible = [m.name for m in book.sheets_metadata
                   if m.typ == reader.SheetTypeEnum.WorkSheet
                   and m.visible == reader.SheetVisibleEnum.Visible
                   and m.name.strip().casefold() != NOTES_SHEET]
        if len(visible) == 1:
            return visible[0]
        if not visible:
            raise FileRejected("the workbook has no visible worksheet", code="empty_file")
        raise FileRejected(f"the workbook has {len(visible)} sheets: say which one with "
                           f"sheet=NAME (one of {', '.join(visible[:_MAX_NAMES])})",
                           code="sheet_required", sheets=visible[:_MAX_NAMES])

    def _next_row(self) -> list[Any] | None:
        try:
            return next(self._rows, None)
        except Exception as exc:  # noqa: BLE001 - a damaged part found mid-sheet
            raise _unreadable(self.kind, exc) from None

    def _find_header(self, schema: Mapping[str, Any],
                     coercers: Mapping[str, Callable[[Any], Any]] | None) -> None:
        index = 0
        while (row := self._next_row()) is not None:
            index += 1  # both readers start at the sheet's first row
            if not _blank(row):
                break
        else:
            raise FileRejected(f"sheet {self.sheet_name!r} is empty: no header row",
                               code="empty_file", sheet=self.sheet_name)
        self._edge = next(i for i, v in enumerate(row) if not _blank([v]))
        self.header = [cell_text(v).strip() for v in row[self._edge:]]
        self.header_line = index
        self._layouts = date_layouts(self.header, schema, coercers)

    def _outside(self, row: list[Any], line: int) -> FileRejected:
        column = next(i for i, v in enumerate(row[:self._edge]) if not _blank([v]))
        return FileRejected(
            f"cell {column_name(column)}{line} of sheet {self.sheet_name!r} holds "
            f"{cell_text(row[column])[:50]!r}, left of the table: its header starts in column "
            f"{column_name(self._edge)} (row {self.header_line}). Move the value into a "
            f"column of the table, or delete it", code="cell_outside_table",
            sheet=self.sheet_name, cell=f"{column_name(column)}{line}")

    def pieces(self, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
        """The header line, then every row after it, as CSV bytes of about ``piece_bytes``."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.header)
        layouts = self._layouts
        width = len(layouts)
        edge = self._edge
        line = self.header_line
        while (row := self._next_row()) is not None:
            line += 1
            if edge:
                if not _blank(row[:edge]):
                    raise self._outside(row, line)
                row = row[edge:]
            if _blank(row):
                out.write("\r\n")
            else:
                if len(row) > width:  # a row wider than the header (its cells past it blank
                    layouts = layouts + [layouts[-1]] * (len(row) - width)  # or an error)
                    width = len(layouts)
                writer.writerow([cell_text(v, lay) for v, lay in zip(row, layouts)])
            if out.tell() >= piece_bytes:
                yield out.getvalue().encode("utf-8", "surrogatepass")
                out.seek(0)
                out.truncate()
        if out.tell():
            yield out.getvalue().encode("utf-8", "surrogatepass")

    def close(self) -> None:
        self._rows = iter(())
        self._book.close()
