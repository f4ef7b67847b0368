"""The streaming CSV engine: bytes -> record-boundary chunks -> checked rows -> output CSV.

The event-loop process only splits the byte stream (``RowChunker``) and writes results; the
CPU work (decode, parse, check, serialise) is ``process_chunk``, run by a ``ChunkPool`` of
worker processes or, for small files, an ``InlineRunner``. Results come back in order.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use, so that a validation worker process, which imports ``worker`` and
# ``jobs`` below this package, does not also load ``pool`` and ``stream`` (and with them
# asyncio and ssl: ~7 MB in every worker).
_WHERE = {
    "CheckerRecipe": "checkers", "RowChecker": "checkers", "get_checker": "checkers",
    "register_checker_factory": "checkers", "Chunk": "chunker", "RowChunker": "chunker",
    "parse_header": "header", "ChunkPool": "pool", "InlineRunner": "pool",
    "CsvStream": "stream", "open_csv_stream": "stream", "resolve_encoding": "transcode",
    "ChunkResult": "worker", "header_rows": "worker", "process_chunk": "worker",
}

if TYPE_CHECKING:
    from ingest_server.csvstream.checkers import (CheckerRecipe, RowChecker, get_checker,
                                                  register_checker_factory)
    from ingest_server.csvstream.chunker import Chunk, RowChunker
    from ingest_server.csvstream.header import parse_header
    from ingest_server.csvstream.pool import ChunkPool, InlineRunner
    from ingest_server.csvstream.stream import CsvStream, open_csv_stream
    from ingest_server.csvstream.transcode import resolve_encoding
    from ingest_server.csvstream.worker import ChunkResult, header_rows, process_chunk


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_WHERE)
