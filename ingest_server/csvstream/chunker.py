"""Split an incoming byte stream into chunks of whole CSV records, with line numbers.

This is the only CSV work done in the event-loop process: it finds record boundaries (see
``boundary.py``) and counts physical lines with ``bytes.count``; decoding, parsing and
checking happen in ``worker.process_chunk``, usually in another process. Memory is bounded by
about one chunk plus one maximal record plus the piece being fed, whatever the file size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ingest_server.csvstream.boundary import count_lines, first_boundary, last_boundary
from ingest_server.csvstream.header import parse_header
from ingest_server.csvstream.transcode import Utf8Transcoder
from ingest_server.errors import FileRejected

_BOM = b"\xef\xbb\xbf"
DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_MAX_LINE_BYTES = 4 << 20
_MIN_RESCAN = 64 << 10


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole records of UTF-8 data. ``first_line`` is the 1-based physical line number of its
    first line in the file (the header is line 1); ``lines`` counts the physical lines in it."""

    seq: int
    first_line: int
    data: bytes
    lines: int


def _line_too_long(line: int, limit: int) -> FileRejected:
    return FileRejected(f"line {line} is longer than {limit} bytes", code="line_too_long",
                        line=line, max_line_bytes=limit)


class RowChunker:
    """Feed network pieces, get ``Chunk``s back; the header row is kept apart.

    After enough bytes arrived, ``header`` (the parsed names), ``header_bytes`` (the raw first
    record, UTF-8, BOM stripped) and ``header_lines`` are set; a bad header raises
    ``FileRejected`` from ``feed``/``finish``. Input in another ``encoding`` is transcoded to
    UTF-8 first (``transcode.py``).
    """

    def __init__(self, *, encoding: str | None = "utf-8", chunk_size: int = DEFAULT_CHUNK_SIZE,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, first_line: int = 1,
                 delimiter: str = ",",
                 choose_delimiter: Callable[[bytes], str] | None = None) -> None:
        if not 0 < chunk_size <= max_line_bytes:
            raise ValueError("need 0 < chunk_size <= max_line_bytes")
        self._transcoder = Utf8Transcoder(encoding)
        self.encoding = self._transcoder.encoding
        self.chunk_size = chunk_size
        self.max_line_bytes = max_line_bytes
        self.header: list[str] | None = None
        self.header_bytes: bytes | None = None
        self.header_lines = 0
        # ``first_line``: the header's line number (a workbook's header row); ``delimiter``,
        # or ``choose_delimiter(raw header)`` deciding it before anything after it is cut.
        self.first_line = first_line
        self.delimiter = delimiter
        self._choose_delimiter = choose_delimiter
        self._buf = bytearray()
        self._bom_checked = False
        self._seq = 0
        self._next_line = first_line
        self._rescan_at = 0  # an incomplete record is not rescanned before the buffer grows
        self._finished = False

    def feed(self, data: bytes) -> list[Chunk]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._buf += self._transcoder.feed(data)
        return self._take_chunks(final=False)

    def finish(self) -> list[Chunk]:
        if self._finished:
            return []
        self._buf += self._transcoder.finish()
        self._finished = True
        return self._take_chunks(final=True)

    def _take_chunks(self, final: bool) -> list[Chunk]:
        buf = self._buf
        if not self._bom_checked:
            if not final and len(buf) < len(_BOM) and _BOM.startswith(buf):
                return []
            if buf.startswith(_BOM):
                del buf[:len(_BOM)]
            self._bom_checked = True
        if self.header_bytes is None and not self._take_header(final):
            return []
        chunks: list[Chunk] = []
        pos, n = 0, len(buf)
        while pos < n:
            remaining = n - pos
            if not final and (remaining < self.chunk_size or remaining < self._rescan_at):
                break
            if final and remaining <= self.chunk_size:
                # The rest of the file is one chunk: its last record ends where the file does
                # (no boundary search; the whole of a small upload).
                cut = n
            else:
                cut = last_boundary(buf, pos, min(n, pos + self.chunk_size), final,
                                    self.delimiter)
            if cut == pos:  # one record longer than chunk_size: it becomes its own chunk
                cut = first_boundary(buf, pos, final, self.delimiter)
                if cut == -1:
                    if remaining > self.max_line_bytes:
                        raise _line_too_long(self._next_line, self.max_line_bytes)
                    if not final:
                        self._rescan_at = self._rescan_threshold(remaining)
                        break
                    cut = n  # the last record of the file has no line terminator
                if cut - pos > self.max_line_bytes:
                    raise _line_too_long(self._next_line, self.max_line_bytes)
            self._rescan_at = 0
            chunks.append(self._chunk(pos, cut))
            pos = cut
        if pos:
            del buf[:pos]
        return chunks

    def _rescan_threshold(self, pending: int) -> int:
        # Doubling keeps rescans of a long incomplete record O(n) overall; the cap makes sure
        # an over-long record is seen (and rejected) as soon as it passes the limit.
        return min(max(2 * pending, _MIN_RESCAN), self.max_line_bytes + 1)

    def _chunk(self, start: int, end: int) -> Chunk:
        lines = count_lines(self._buf, start, end)
        with memoryview(self._buf) as view:  # one copy (a bytearray slice is a copy itself)
            data = bytes(view[start:end])
        chunk = Chunk(self._seq, self._next_line, data, lines)
        self._seq += 1
        self._next_line += lines
        return chunk

    def _take_header(self, final: bool) -> bool:
        buf = self._buf
        if not final and len(buf) < self._rescan_at:
            return False
        end = first_boundary(buf, 0, final, self.delimiter)
        if end == -1:
            if len(buf) > self.max_line_bytes:
                raise _line_too_long(self.first_line, self.max_line_bytes)
            if not final:
                self._rescan_at = self._rescan_threshold(len(buf))
                return False
            end = len(buf)
        if end > self.max_line_bytes:
            raise _line_too_long(self.first_line, self.max_line_bytes)
        self._rescan_at = 0
        self.header_bytes = bytes(buf[:end])
        if self._choose_delimiter is not None:
            self.delimiter = self._choose_delimiter(self.header_bytes)
        self.header = parse_header(self.header_bytes, "utf-8", self.delimiter)
        self.header_lines = count_lines(buf, 0, end)
        self._next_line = self.first_line + self.header_lines
        del buf[:end]
        return True
