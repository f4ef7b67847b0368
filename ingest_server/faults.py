"""Fault points: places where a test can stop the server exactly, to kill it there (SIGKILL).

``INGEST_TEST_HOLD=<point>:<path>`` (read at import): when the code reaches fault point
``<point>``, it writes its process id to ``<path>`` and waits there until the process ends.
Without the variable a fault point is one comparison. Points: ``datasets.mid_apply`` (inside the
transaction that applies an upload to one of its dataset tables, before it commits),
``datasets.between_tables`` (after such a transaction committed).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

_POINT, _, _PATH = os.environ.get("INGEST_TEST_HOLD", "").partition(":")


async def fault_point(name: str) -> None:
    if name != _POINT or not _PATH:
        return
    await asyncio.to_thread(Path(_PATH).write_text, str(os.getpid()))
    while True:
        await asyncio.sleep(3600)
