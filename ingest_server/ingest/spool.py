"""Temporary files for uploads that cannot stream straight through (late form fields, ZIPs)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import AsyncIterator

READ_CHUNK = 256 * 1024


async def spool(chunks: AsyncIterator[bytes], spool_dir: Path) -> tuple[Path, int]:
    """Write ``chunks`` to a new temporary file (random name); removed again if anything fails."""
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, prefix="upload-", dir=spool_dir)
    path, size = Path(name), 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                await asyncio.to_thread(f.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


async def file_chunks(path: Path, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """A file's bytes, read in a thread so the event loop never waits on the disk."""
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, chunk_size):
            yield chunk
