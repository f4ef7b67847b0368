"""Who checks an upload's rows: in-process, the worker pool, or the killable workers.

Small uploads are checked in-process; larger ones in the worker pool (started lazily). A spec
with a ``regex`` or ``pattern`` rule is always checked in a ``GuardedPool``: Python's ``re``
holds the GIL while it matches, so a catastrophic pattern (``(a+)+$`` on 29 characters: 13 s)
would freeze the event loop (``/healthz`` included) whether run on it or in a thread; and each
chunk there has ``limits.pattern_chunk_timeout_s``, past which its worker is killed and the
upload refused (400 ``pattern_timeout``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, AsyncIterator

from ..config import Settings
from ..csvstream import ChunkPool, InlineRunner
from ..csvstream.guarded import GuardedPool

log = logging.getLogger("ingest_server")


class Runners:
    def __init__(self, settings: Settings) -> None:
        cfg = settings.ingest
        sample = settings.limits.errors_sample
        self.min_bytes = cfg.parallel_min_bytes
        self.sample = sample
        self.inline = InlineRunner(sample_limit=sample)
        # With N server processes on one machine, each gets its share of the cores by default.
        workers = cfg.workers or max(1, (os.cpu_count() or 1) // settings.server.workers)
        self.pool = ChunkPool(workers, sample_limit=sample) if workers > 1 else None
        # Killable workers for client-supplied patterns, started on first use.
        self.isolated = GuardedPool(workers, sample_limit=sample,
                                    deadline_s=settings.limits.pattern_chunk_timeout_s)

    def for_upload(self, expected_bytes: int | None, isolate: bool = False) -> Any:
        """The runner of one CSV (``expected_bytes``: its size when known)."""
        if isolate:
            return self.isolated
        if self.pool is None or (expected_bytes is not None and expected_bytes < self.min_bytes):
            return self.inline
        return self.pool

    def listing(self, sample_limit: int, isolate: bool) -> Any:
        """A runner that lists up to ``sample_limit`` row errors per chunk (``/validate``)."""
        if isolate:
            return _Listing(self.isolated, sample_limit)
        return InlineRunner(sample_limit=sample_limit)

    async def start(self) -> None:
        """Start the worker processes, so the first large upload does not wait for them."""
        if self.pool is not None:
            try:
                await self.pool.start()
            except (OSError, RuntimeError) as e:  # the pool starts again on first use
                log.warning("validation workers did not start: %s", e)

    async def close(self) -> None:
        for pool in (self.pool, self.isolated):
            if pool is not None:
                await pool.close()


class _Listing:
    """The guarded pool, listing up to ``sample_limit`` row errors per chunk."""

    def __init__(self, pool: GuardedPool, sample_limit: int) -> None:
        self.pool, self.sample_limit = pool, sample_limit

    def map_ordered(self, chunks: Any, ctx_key: str, spec: Any) -> AsyncIterator[Any]:
        return self.pool.map_ordered(chunks, ctx_key, spec, sample_limit=self.sample_limit)
