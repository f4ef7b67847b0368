"""What a validation worker process runs (``ChunkPool``, ``GuardedPool``), importing only what
it needs: the checks and ``process_chunk``, not the event-loop side (asyncio, the pools)."""

from __future__ import annotations

import os
from collections.abc import Callable

from ingest_server.csvstream.checkers import RowChecker, ensure_checker
from ingest_server.csvstream.chunker import Chunk
from ingest_server.csvstream.worker import ChunkResult, process_chunk

CheckerFactory = Callable[[], RowChecker]  # a CheckerRecipe, or any picklable zero-argument factory


def ping() -> int:
    return os.getpid()


def run_job(chunk: Chunk, ctx_key: str, spec: CheckerFactory, sample_limit: int) -> ChunkResult:
    """Entry point in the worker: the spec travels with every job, so a worker builds the
    checker of a new ``ctx_key`` on first use and reuses it for the following chunks."""
    ensure_checker(ctx_key, spec)
    return process_chunk(chunk, ctx_key, sample_limit=sample_limit)
