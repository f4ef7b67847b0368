"""What an upload is, from its first bytes (never from its name).

``sniff(head)`` looks at the first bytes only: a ZIP container (``.xlsx``, ``.xlsm``, ``.xlsb``,
``.ods``, or a plain ZIP archive) or an OLE2 compound file (``.xls``). Which ZIP container it is
needs its directory: ``zip_kind(path)`` reads it once the file is on disk.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEAD_BYTES = len(OLE2_MAGIC)
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"


def sniff(head: bytes) -> str | None:
    """``"zip"`` or ``"ole2"`` for a container, ``None`` for anything else (text, we hope)."""
    if head.startswith(ZIP_MAGIC) or head.startswith(EMPTY_ZIP_MAGIC):
        return "zip"
    if head.startswith(OLE2_MAGIC):
        return "ole2"
    return None


def zip_kind(path: Path) -> str | None:
    """``"xlsx"`` (also .xlsm), ``"xlsb"``, ``"ods"`` for a workbook, ``None`` for another ZIP
    (or one too damaged to list). Blocking: run it in a thread."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "xl/workbook.bin" in names:
                return "xlsb"
            if "mimetype" in names and "content.xml" in names:
                with archive.open("mimetype") as f:
                    if f.read(len(_ODS_MIME) + 16).strip() == _ODS_MIME:
                        return "ods"
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    return None
