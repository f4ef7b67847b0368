"""A sheet's size, found cheaply before calamine decodes it (blocking: run it in a thread).

calamine holds a decoded sheet in memory (about 80 bytes a cell at its peak, 45 once decoded;
measured: docs/files.md), so a sheet is sized first and refused past
``limits.max_workbook_cells``. Nothing here reads a whole sheet: ``.xlsx``/``.xlsm`` read the
first 16 KB of the sheet's XML for its ``<dimension ref="A1:J100001"/>`` (the sheet's member
found from ``xl/workbook.xml`` and its relationships, small files read up to 1 MB); without
one (openpyxl's write-only mode leaves it out) or for the other formats, a byte count divided
by a typical cell's bytes is the estimate.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

HEAD_BYTES = 16 * 1024  # <dimension> comes before <sheetViews>, <cols> and the data
INDEX_BYTES = 1024 * 1024  # xl/workbook.xml and its .rels: a sheet list (larger: not looked at)
# Bytes of one cell where only a byte count is known. For a sheet's XML, bytes follow memory
# (text cells take more of both): measured 38 B/cell for numbers, 47 mixed, 76 for text.
XML_CELL_BYTES = 40    # <c r="B7" t="n"><v>12.5</v></c> in a sheet's XML, uncompressed
ODS_CELL_BYTES = 64    # <table:table-cell office:value-type="float" ...> in content.xml
BINARY_CELL_BYTES = 16  # an .xls BIFF cell record; .xlsb (compressed file) is smaller still
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


@dataclass(frozen=True)
class SheetSize:
    cells: int
    rows: int | None  # None: estimated from bytes, rows unknown
    how: str  # "dimension" or what the estimate was made from


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _small_xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element | None:
    with archive.open(name) as f:
        data = f.read(INDEX_BYTES + 1)
    return ElementTree.fromstring(data) if len(data) <= INDEX_BYTES else None


def _sheet_member(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The ZIP member of the sheet called ``sheet`` (workbook.xml + its relationships)."""
    try:
        book = _small_xml(archive, "xl/workbook.xml")
        rels = _small_xml(archive, "xl/_rels/workbook.xml.rels")
    except (KeyError, ElementTree.ParseError):
        return None
    if book is None or rels is None:
        return None
    rid = next((s.get(_REL) for s in book.iter(_MAIN + "sheet") if s.get("name") == sheet), None)
    target = next((r.get("Target") for r in rels.iter(_RELS + "Relationship")
                   if r.get("Id") == rid), None) if rid else None
    if not target:
        return None
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath(
        posixpath.join("xl", target))


def _xlsx(archive: zipfile.ZipFile, sheet: str) -> SheetSize | None:
    member = _sheet_member(archive, sheet)
    if member is None:
        return None
    try:
        info = archive.getinfo(member)
        with archive.open(info) as f:
            head = f.read(HEAD_BYTES)
    except KeyError:
        return None
    found = _DIMENSION.search(head)
    if found and found.group(3):
        first_col, first_row, last_col, last_row = found.groups()
        rows = int(last_row) - int(first_row) + 1
        cols = _column(last_col) - _column(first_col) + 1
        if rows > 0 and cols > 0:
            by_bytes = info.file_size // XML_CELL_BYTES
            # A dimension far below what the XML holds is stale (a writer that never updated
            # it): the bytes then say more.
            if rows * cols * 4 >= by_bytes:
                return SheetSize(rows * cols, rows, "dimension")
    return SheetSize(info.file_size // XML_CELL_BYTES, None, f"{member} size")


def sheet_size(path: Path, kind: str, sheet: str) -> SheetSize:
    """The cells of ``sheet`` in the workbook at ``path`` (``kind`` from ``sniff.zip_kind``)."""
    if kind in ("xlsx", "ods"):
        try:
            with zipfile.ZipFile(path) as archive:
                if kind == "xlsx":
                    size = _xlsx(archive, sheet)
                    if size is not None:
                        return size
                else:
                    content = archive.getinfo("content.xml").file_size
                    return SheetSize(content // ODS_CELL_BYTES, None, "content.xml size")
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            pass  # calamine says what is wrong with it
    return SheetSize(path.stat().st_size // BINARY_CELL_BYTES, None, "file size")
