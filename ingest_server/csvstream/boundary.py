"""Where a CSV record ends, decided on raw UTF-8 bytes exactly as ``csv.reader`` would.

A newline inside a quoted field is not a record boundary. Counting quote parity alone gets
this wrong for stray quotes inside unquoted fields (``5'10"``), which ``csv.reader`` (default
dialect, ``strict=False``) keeps as literal characters; one such value would then swallow the
rest of the file. So the decision uses a regular expression that follows the reader's state
machine: a quote opens a quoted field only at the start of a field, ``""`` is an escaped quote,
and after the closing quote anything up to the next comma or line end is plain text. The
regex runs in C (possessive quantifiers, no backtracking), and the common window that holds no
quote at all takes an even cheaper ``rfind``.
"""

from __future__ import annotations

import functools
import re

_FIELD = rb'(?>"[^"]*+(?:""[^"]*+)*+"[^,\r\n]*+|[^",\r\n][^,\r\n]*+|)'
_ROW = _FIELD + rb"(?:," + _FIELD + rb")*+(?:\r\n|\n|\r)"
ONE_ROW = re.compile(_ROW)
ROWS = re.compile(rb"(?:" + _ROW + rb")*+")


@functools.lru_cache(maxsize=8)
def patterns(delimiter: str = ",") -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """``(ONE_ROW, ROWS)`` for a file separated by ``delimiter`` (one ASCII character)."""
    if delimiter == ",":
        return ONE_ROW, ROWS
    d = re.escape(delimiter.encode("ascii"))
    field = (rb'(?>"[^"]*+(?:""[^"]*+)*+"[^' + d + rb'\r\n]*+|[^"' + d + rb'\r\n][^' + d
             + rb'\r\n]*+|)')
    row = field + rb"(?:" + d + field + rb")*+(?:\r\n|\n|\r)"
    return re.compile(row), re.compile(rb"(?:" + row + rb")*+")

_CR, _LF = 0x0D, 0x0A


def safe_end(buf: bytes | bytearray, end: int, final: bool) -> int:
    """Move ``end`` so that it never splits a CRLF pair (a CR alone also ends a line)."""
    if end > 0 and buf[end - 1] == _CR:
        if end < len(buf):
            if buf[end] == _LF:
                return end + 1
        elif not final:
            return end - 1  # the next piece may start with LF: undecided yet
    return end


def last_boundary(buf: bytes | bytearray, start: int, end: int, final: bool,
                  delimiter: str = ",") -> int:
    """Offset just after the last complete record in ``buf[start:end]``; ``start`` if none.

    ``start`` must be a record boundary.
    """
    end = safe_end(buf, end, final)
    if end <= start:
        return start
    if buf.find(b'"', start, end) == -1:
        lf = buf.rfind(b"\n", start, end)
        if lf != -1:
            return lf + 1
    return patterns(delimiter)[1].match(buf, start, end).end()


def first_boundary(buf: bytes | bytearray, start: int, final: bool,
                   delimiter: str = ",") -> int:
    """Offset just after the first complete record starting at ``start``; -1 if incomplete."""
    end = safe_end(buf, len(buf), final)
    m = patterns(delimiter)[0].match(buf, start, end)
    return m.end() if m else -1


def count_lines(data: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """Physical lines that start in ``data[start:end]``: LF, CRLF and a bare CR each end one."""
    if end is None:
        end = len(data)
    if end <= start:
        return 0
    cr = data.count(b"\r", start, end) if data.find(b"\r", start, end) != -1 else 0
    n = data.count(b"\n", start, end) + cr
    if cr:
        n -= data.count(b"\r\n", start, end)
    if data[end - 1] not in (_CR, _LF):
        n += 1  # the last line has no terminator (end of file)
    return n
