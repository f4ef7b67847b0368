"""Where the bytes of an unfinished resumable upload wait: in the configured storage, so any
instance can take the next PATCH or finish the upload.

- Local storage: one file ``<root>/.staging/tus-<id>/data``, appended to and fsynced per PATCH
  (the storage's own staging folder: never listed as a published object).
- S3: one object per segment of at most ``SEGMENT_BYTES`` under ``<prefix>.staging/tus-<id>/``,
  named by its start offset. Separate objects rather than multipart parts, because a tus client
  chooses its PATCH sizes and S3 refuses parts under 5 MiB but the last; a short segment is
  simply a small object. Reading follows the chain offset -> offset + size, so a segment left by
  a PATCH that was not accepted (checksum mismatch, crash) is overwritten or never reached.

Only bytes before the recorded ``upload_offset`` count: :meth:`append` starts by cutting anything
after it, so a crash in the middle of a PATCH never leaves stray bytes in the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

from ..errors import StorageError
from ..storage.base import STAGING_DIR, Storage

WRITE_BYTES = 1024 * 1024  # local: batch small network reads into one write in a thread
SEGMENT_BYTES = 8 * 1024 * 1024  # S3: memory per PATCH in flight, and objects per GiB (128)
READ_BYTES = 256 * 1024


def staged_name(tus_id: str) -> str:
    return f"tus-{tus_id}"


class Staging(Protocol):
    async def append(self, tus_id: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        """Write ``chunks`` from ``offset`` on; durable when it returns the count written. An
        error of ``chunks`` ends the body early: what arrived before it is still written."""

    async def discard_after(self, tus_id: str, offset: int) -> None:
        """Forget bytes after ``offset`` (a PATCH that was not accepted)."""

    def read(self, tus_id: str, length: int) -> AsyncIterator[bytes]: ...

    def local_path(self, tus_id: str) -> Path | None:
        """The staged bytes as one local file, when they are one."""

    async def delete(self, tus_id: str) -> None: ...

    async def free_bytes(self) -> int | None:
        """Bytes the staging area can still take; None when the backend does not say (S3)."""


class LocalStaging:
    def __init__(self, root: Path) -> None:
        self.staging = Path(root) / STAGING_DIR

    def local_path(self, tus_id: str) -> Path:
        return self.staging / staged_name(tus_id) / "data"

    async def free_bytes(self) -> int:
        where = self.staging if self.staging.exists() else self.staging.parent
        return (await asyncio.to_thread(shutil.disk_usage, where)).free

    async def append(self, tus_id: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        path = self.local_path(tus_id)

        def open_at() -> int:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            return fd

        fd = await asyncio.to_thread(open_at)
        written, buffer = 0, bytearray()
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    buffer += chunk
                    if len(buffer) >= WRITE_BYTES:
                        written += await asyncio.to_thread(_write_all, fd, bytes(buffer))
                        buffer.clear()
            if buffer:
                written += await asyncio.to_thread(_write_all, fd, bytes(buffer))
            await asyncio.to_thread(os.fsync, fd)
        except OSError as e:
            raise StorageError(f"staging a resumable upload failed: {e.strerror}",
                               code="storage_error") from e
        finally:
            os.close(fd)
        return written

    async def discard_after(self, tus_id: str, offset: int) -> None:
        path = self.local_path(tus_id)

        def cut() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(path, offset)

        await asyncio.to_thread(cut)

    async def read(self, tus_id: str, length: int) -> AsyncIterator[bytes]:
        path, left = self.local_path(tus_id), length
        with open(path, "rb") as f:
            while left > 0:
                chunk = await asyncio.to_thread(f.read, min(READ_BYTES, left))
                if not chunk:
                    raise StorageError("the staged upload is shorter than recorded",
                                       code="staging_incomplete")
                left -= len(chunk)
                yield chunk

    async def delete(self, tus_id: str) -> None:
        path = self.local_path(tus_id)

        def remove() -> None:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()

        await asyncio.to_thread(remove)


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)


class S3Staging:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def _key(self, tus_id: str, offset: int | None = None) -> str:
        base = f"{self.storage.prefix}{STAGING_DIR}/{staged_name(tus_id)}/"
        return base if offset is None else f"{base}{offset:020d}"

    async def free_bytes(self) -> None:
        return None  # an object store has no free space to ask about

    def local_path(self, tus_id: str) -> None:
        return None

    async def append(self, tus_id: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        written, buffer = 0, bytearray()
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) >= SEGMENT_BYTES:
                    await self._put(tus_id, offset + written, bytes(buffer[:SEGMENT_BYTES]))
                    written += SEGMENT_BYTES
                    del buffer[:SEGMENT_BYTES]
        if buffer:
            await self._put(tus_id, offset + written, bytes(buffer))
            written += len(buffer)
        return written

    async def _put(self, tus_id: str, offset: int, body: bytes) -> None:
        from ..storage.s3 import _S3_ERRORS, _map_error  # noqa: PLC0415 - botocore only for S3

        key = self._key(tus_id, offset)
        try:
            await self.storage.client.put_object(Bucket=self.storage.bucket, Key=key, Body=body)
        except _S3_ERRORS as e:
            raise _map_error(e, "put_object", key) from e

    async def discard_after(self, tus_id: str, offset: int) -> None:
        return None  # segments after the recorded offset are overwritten or never reached

    async def read(self, tus_id: str, length: int) -> AsyncIterator[bytes]:
        from ..storage.s3 import _S3_ERRORS, _map_error  # noqa: PLC0415

        offset = 0
        while offset < length:
            key = self._key(tus_id, offset)
            try:
                response = await self.storage.client.get_object(Bucket=self.storage.bucket,
                                                                Key=key)
                body = response["Body"]
                try:
                    while chunk := await body.read(min(READ_BYTES, length - offset)):
                        offset += len(chunk)
                        yield chunk
                        if offset >= length:
                            break
                finally:
                    body.close()
            except _S3_ERRORS as e:
                raise _map_error(e, "get_object", key) from e

    async def delete(self, tus_id: str) -> None:
        from ..storage.s3 import _S3_ERRORS, _map_error  # noqa: PLC0415

        client, bucket = self.storage.client, self.storage.bucket
        try:
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=self._key(tus_id)):
                for item in page.get("Contents", []):
                    await client.delete_object(Bucket=bucket, Key=item["Key"])
        except _S3_ERRORS as e:
            raise _map_error(e, "delete_object", self._key(tus_id)) from e


def staging_for(storage: Storage) -> Staging:
    """The staging that matches the configured storage backend."""
    root = getattr(storage, "root", None)
    if root is not None:
        return LocalStaging(root)
    return S3Staging(storage)
