"""The streaming CSV engine: bytes -> record-boundary chunks -> checked rows -> output CSV.

The event-loop process only splits the byte stream (``RowChunker``) and writes results; the
CPU work (decode, parse, check, serialise) is ``process_chunk``, run by a ``ChunkPool`` of
worker processes or, for small files, an ``InlineRunner``. Results come back in order.
"""

from ingest_server.csvstream.checkers import (
    CheckerRecipe,
    RowChecker,
    get_checker,
    register_checker_factory,
)
from ingest_server.csvstream.chunker import Chunk, RowChunker
from ingest_server.csvstream.header import parse_header
from ingest_server.csvstream.pool import ChunkPool, InlineRunner
from ingest_server.csvstream.stream import CsvStream, open_csv_stream
from ingest_server.csvstream.transcode import resolve_encoding
from ingest_server.csvstream.worker import ChunkResult, header_rows, process_chunk

__all__ = [
    "CheckerRecipe", "Chunk", "ChunkPool", "ChunkResult", "CsvStream", "InlineRunner",
    "RowChecker", "RowChunker", "get_checker", "header_rows", "open_csv_stream",
    "parse_header", "process_chunk", "register_checker_factory", "resolve_encoding",
]
