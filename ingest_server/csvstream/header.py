"""The header row: the column names every later row is checked against.

Rejections here are file-level (``FileRejected``) because nothing after a bad header can be
interpreted. A header-only file is fine here: the caller sees 0 rows and reports it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter

from ingest_server.errors import FileRejected

# Tab is legitimate in a header; every other C0 control, DEL and NUL means binary data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# The chunker rejects records over max_line_bytes, so no field can exceed this in practice;
# csv's own default (128 KiB) would turn long legitimate fields into a crash.
FIELD_SIZE_LIMIT = 1 << 30
_long_fields = False


def allow_long_fields() -> None:
    """Raise the csv module's field size limit (one per process) on first use, not at import."""
    global _long_fields
    if not _long_fields:
        if csv.field_size_limit() < FIELD_SIZE_LIMIT:
            csv.field_size_limit(FIELD_SIZE_LIMIT)
        _long_fields = True


def parse_header(first_row_bytes: bytes, encoding: str = "utf-8",
                 delimiter: str = ",") -> list[str]:
    """Decode (BOM stripped), parse one CSV record and return the stripped column names
    (trailing empty names included: see ``shape.shape_header``)."""
    try:
        text = codecs.decode(first_row_bytes, encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(f"the header is not valid {encoding} text", code="not_text",
                           line=1, encoding=encoding, position=exc.start) from None
    except LookupError:
        raise FileRejected(f"unknown encoding {encoding!r}", code="not_text", line=1,
                           encoding=encoding) from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise FileRejected("the file is empty: no header row", code="empty_file", line=1)
    bad = _CONTROL.search(text)
    if bad:
        raise FileRejected("the header holds binary data: this does not look like a CSV file",
                           code="not_a_csv", line=1, character=f"U+{ord(bad.group()):04X}",
                           position=bad.start())
    try:
        allow_long_fields()
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise FileRejected(f"the header is not CSV: {exc}", code="not_a_csv", line=1) from None
    if len(rows) != 1:
        # a header is one record; more means the caller passed more than the first row
        raise FileRejected("the header is not a single CSV record", code="not_a_csv", line=1)
    names = [name.strip() for name in rows[0]]
    # Excel's trailing empty columns (a,b,c,,,) are not columns: ``shape.shape_header`` drops
    # them. An empty name before a named column is an error.
    named = len(names)
    while named and not names[named - 1]:
        named -= 1
    empty = [i + 1 for i, name in enumerate(names[:named]) if not name]
    if empty or not named:
        raise FileRejected("the header has empty column names", code="empty_header_name",
                           line=1, positions=empty or list(range(1, len(names) + 1)))
    dups = sorted(name for name, n in Counter(names[:named]).items() if n > 1)
    if dups:
        raise FileRejected(f"duplicate column names: {', '.join(dups)}",
                           code="duplicate_header", line=1, duplicates=dups)
    return names
