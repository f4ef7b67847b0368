"""One sheet of a workbook on disk as UTF-8 CSV bytes, header row first (blocking: a thread).

* the sheet: ``sheet=NAME``, else the only visible worksheet (a "rules" sheet, as in our
  templates, does not count); several and no name is refused with their names
  (``sheet_required``), so the user says which one;
* the header is the first row with a non-blank cell; cells left of the used area are not
  columns; rows come out one CSV line per sheet row (an empty row as an empty line, which the
  CSV reader skips), so with ``header_line`` as the header's line number every rejected row
  keeps its sheet row number. A cell holding a line break spans lines in CSV: the rows after it
  are then numbered that many lines further (their values are not changed);
* merged cells hold their value in the top-left cell only, as Excel's own CSV export.

The upload is on disk (random access is what the formats need); calamine decodes the chosen
sheet into its own compact cell array, rows are converted to text a batch at a time.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
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


def _unreadable(kind: str, exc: BaseException) -> FileRejected:
    if isinstance(exc, calamine.PasswordError):
        return FileRejected("the workbook is password-protected: save it without a password, "
                            "or export the sheet as CSV", code="workbook_unreadable",
                            workbook=kind)
    return FileRejected(f"the file looks like a {kind} workbook but cannot be read: "
                        f"{str(exc)[:200]}", code="workbook_unreadable", workbook=kind)


def _check_size(path: Path, kind: str, sheet: str, max_cells: int) -> None:
    size = sheet_size(path, kind, sheet)
    if size.cells <= max_cells:
        return
    what = (f"{size.cells:,} cells ({size.rows:,} rows)" if size.rows is not None
            else f"about {size.cells:,} cells (estimated from its {size.how})")
    raise FileRejected(f"sheet {sheet!r} has {what}: a workbook sheet may hold at most "
                       f"{max_cells:,} cells (limits.max_workbook_cells), because it is read "
                       f"whole into memory. Save the sheet as CSV and upload that: CSV files "
                       f"stream, with no such limit", code="workbook_too_large", status=413,
                       workbook=kind, sheet=sheet, cells=size.cells, rows=size.rows,
                       estimated=size.rows is None, max_cells=max_cells)


def _blank(row: list[Any]) -> bool:
    for v in row:
        if v is None or v == "":
            continue
        if isinstance(v, str) and not v.strip():
            continue
        return False
    return True


class SheetCsv:
    """A chosen sheet of an open workbook. ``open`` reads it; ``pieces()`` yields CSV bytes."""

    def __init__(self, book: Any, sheet: Any, kind: str) -> None:
        self._book, self._sheet, self.kind = book, sheet, kind
        self.sheet_name: str = sheet.name
        self.header: list[str] = []
        self.header_line = 1
        self._rows: Iterator[list[Any]] = iter(())
        self._layouts: list[Layout] = []

    @classmethod
    def open(cls, path: Path, kind: str, sheet: str | None, schema: Mapping[str, Any],
             coercers: Mapping[str, Callable[[Any], Any]] | None = None,
             max_cells: int = 0) -> SheetCsv:
        """``max_cells``: refuse a larger sheet before it is decoded (0: no limit)."""
        try:
            book = calamine.CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # noqa: BLE001 - calamine's errors are many and untyped
            raise _unreadable(kind, exc) from None
        try:
            chosen = cls._choose(book, sheet)
            if max_cells:
                _check_size(path, kind, chosen, max_cells)
            try:
                data = book.get_sheet_by_name(chosen)
            except Exception as exc:  # noqa: BLE001
                raise _unreadable(kind, exc) from None
            self = cls(book, data, kind)
            self._find_header(schema, coercers)
            return self
        except BaseException:
            book.close()
            raise

    @staticmethod
    def _choose(book: Any, sheet: str | None) -> str:
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
                   if m.typ == calamine.SheetTypeEnum.WorkSheet
                   and m.visible == calamine.SheetVisibleEnum.Visible
                   and m.name.strip().casefold() != NOTES_SHEET]
        if len(visible) == 1:
            return visible[0]
        if not visible:
            raise FileRejected("the workbook has no visible worksheet", code="empty_file")
        raise FileRejected(f"the workbook has {len(visible)} sheets: say which one with "
                           f"sheet=NAME (one of {', '.join(visible[:_MAX_NAMES])})",
                           code="sheet_required", sheets=visible[:_MAX_NAMES])

    def _find_header(self, schema: Mapping[str, Any],
                     coercers: Mapping[str, Callable[[Any], Any]] | None) -> None:
        rows = iter(self._sheet.iter_rows())
        for index, row in enumerate(rows):
            if not _blank(row):
                self.header = [cell_text(v).strip() for v in row]
                self.header_line = index + 1  # calamine counts rows from the sheet's first
                break
        else:
            raise FileRejected(f"sheet {self.sheet_name!r} is empty: no header row",
                               code="empty_file", sheet=self.sheet_name)
        self._rows = rows
        self._layouts = date_layouts(self.header, schema, coercers)

    def pieces(self, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
        """The header line, then every row after it, as CSV bytes of about ``piece_bytes``."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.header)
        layouts = self._layouts
        width = len(layouts)
        for row in self._rows:
            if _blank(row):
                out.write("\r\n")
            else:
                if len(row) > width:  # never from calamine (one width per sheet); be total
                    layouts = layouts + [layouts[-1]] * (len(row) - width)
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
