"""Temporary files for uploads that cannot stream straight through (late form fields, ZIPs)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from ..errors import InsufficientStorage

READ_CHUNK = 256 * 1024
log = logging.getLogger("ingest_server.ingest")
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@dataclass(frozen=True)
class Spooled:
    """A spooled file: where, how many bytes, and their SHA-256 (hashed while writing)."""

    path: Path
    size: int
    sha256: str


async def spool(chunks: AsyncIterator[bytes], spool_dir: Path) -> Spooled:
    """Write ``chunks`` to a new temporary file (random name); removed again if anything fails."""
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, prefix="upload-", dir=spool_dir)
    path, size, digest = Path(name), 0, hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                digest.update(chunk)
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
    return Spooled(path, size, digest.hexdigest())


async def file_chunks(path: Path, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """A file's bytes, read in a thread so the event loop never waits on the disk."""
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, chunk_size):
            yield chunk


def file_sha256(path: Path, chunk_size: int = READ_CHUNK) -> str:
    """A file's SHA-256 (blocking: run it in a thread)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
