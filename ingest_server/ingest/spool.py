"""Temporary files for uploads that cannot stream straight through (late form fields, ZIPs)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import tempfile
from pathlib import Path
from typing import AsyncIterator

from ..errors import InsufficientStorage

READ_CHUNK = 256 * 1024
log = logging.getLogger("ingest_server.ingest")
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


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
    except OSError as e:
        path.unlink(missing_ok=True)
        if e.errno not in _FULL:
            raise
        # The server's disk, not the client's connection: 507, and loud enough to be acted on.
        log.error("spool folder %s is full (%s): upload refused", spool_dir, e.strerror)
        raise InsufficientStorage("the server has no room to receive this upload now; try "
                                  "again later", code="insufficient_storage") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


async def file_chunks(path: Path, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """A file's bytes, read in a thread so the event loop never waits on the disk."""
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, chunk_size):
            yield chunk
