"""A sheet's size, found cheaply before python-calamine decodes it (blocking: run it in a thread).

Only the formats read whole are sized (``.xls``, ``.xlsb``, ``.ods``; ``.xlsx`` streams):
calamine holds a decoded sheet in memory (about 80 bytes a cell at its peak, 45 once decoded;
measured: docs/files.md), so a sheet is sized first and refused past
``limits.max_workbook_cells``. Nothing here reads a sheet: a byte count divided by a typical
cell's bytes is the estimate (``content.xml``'s uncompressed size for ``.ods``, the file's size
for the binary formats).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

ODS_CELL_BYTES = 64    # <table:table-cell office:value-type="float" ...> in content.xml
BINARY_CELL_BYTES = 16  # an .xls BIFF cell record; .xlsb (compressed file) is smaller still


@dataclass(frozen=True)
class SheetSize:
    cells: int
    how: str  # what the estimate was made from


def sheet_size(path: Path, kind: str, sheet: str) -> SheetSize:
    """The cells of ``sheet`` in the workbook at ``path`` (``kind`` from ``sniff.zip_kind``)."""
    if kind == "ods":
        try:
            with zipfile.ZipFile(path) as archive:
                content = archive.getinfo("content.xml").file_size
            return SheetSize(content // ODS_CELL_BYTES, "content.xml size")
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            pass  # calamine says what is wrong with it
    return SheetSize(path.stat().st_size // BINARY_CELL_BYTES, "file size")
