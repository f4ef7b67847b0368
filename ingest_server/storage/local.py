"""Objects as files under a root directory, published with an atomic rename.

A writer stages its bytes in ``<root>/.staging/<upload_id>.<n>.part`` (the same filesystem as the
target, so ``os.replace`` is atomic) and renames the file into place on commit, after an fsync.
The staged files lie side by side, not in a folder per upload: creating and removing a folder for
every upload cost more CPU on ext4 than all of the upload's other file work (its inode allocator
searches the block groups for a folder). Disk work
runs in threads of this module's own pool, in batches of about 1 MiB, so the event loop never
waits on the disk for long. A commit (last bytes, fsync, rename, fsync of the folder) is one
trip to that pool; the pool has many threads because they mostly wait for the disk, and
concurrent fsyncs are cheaper together (the filesystem commits its journal once for all of them)
than queued behind each other in asyncio's small default pool.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Callable, TypeVar

from ingest_server.errors import (Conflict, IngestError, InsufficientStorage,
                                  InvalidStorageArgument, NotFound, StorageError)
from ingest_server.storage.base import (DEFAULT_CHUNK_SIZE, STAGING_DIR, validate_key,
                                        validate_prefix, validate_upload_id)

log = logging.getLogger(__name__)

FLUSH_BYTES = 1024 * 1024
FIRST_FLUSH_BYTES = 64 * 1024  # below this an object is written in one go at commit
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
DISK_THREADS = 32
T = TypeVar("T")
_disk_pool: ThreadPoolExecutor | None = None
_STAGED_PREFIX = uuid.uuid4().hex  # per process: a forked child draws its own (_new_prefix)
_staged_seq = itertools.count()


def _new_prefix() -> None:
    global _STAGED_PREFIX
    _STAGED_PREFIX = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_prefix)


def _on_disk(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in the storage's thread pool (created on first use)."""
    global _disk_pool
    if _disk_pool is None:
        _disk_pool = ThreadPoolExecutor(DISK_THREADS, thread_name_prefix="local-storage")
    return asyncio.get_running_loop().run_in_executor(_disk_pool, functools.partial(fn, *args))


def _map_os_error(exc: OSError, action: str, key: str) -> IngestError:
    if exc.errno in _NO_SPACE:
        return InsufficientStorage(f"no space left while {action} {key}",
                                   code="insufficient_storage", key=key)
    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY):
        # e.g. key "a/b" when "a" is already an object: a naming clash, not an outage.
        return Conflict(f"{key} clashes with an existing object or folder",
                        code="key_conflict", key=key)
    return StorageError(f"{action} {key} failed: {exc.strerror or exc}", code="storage_error",
                        key=key)


class LocalWriter:
    """Stages one object in a file and renames it to its key on commit.

    The staged file is created at the first flush (``FIRST_FLUSH_BYTES`` buffered): an object
    smaller than that (most of a small upload's) goes to disk in one trip at commit — create,
    write, fsync, rename, fsync of the folder — and one aborted before it never touches the
    disk (like an S3 writer before its first part)."""

    def __init__(self, storage: LocalStorage, key: str, staged: Path) -> None:
        self.key = key
        self.bytes_written = 0
        self._storage = storage
        self._staged = staged
        self._fh: BinaryIO | None = None
        self._touched = False  # the staged file may exist (its creation was started)
        self._buffer = bytearray()
        self._state = "open"

    async def write(self, data: bytes) -> None:
        if self._state != "open":
            raise StorageError(f"writer for {self.key} is {self._state}", code="writer_closed",
                               key=self.key)
        self.bytes_written += len(data)
        limit = FLUSH_BYTES if self._touched else FIRST_FLUSH_BYTES
        if not self._buffer and len(data) >= limit:
            await self._flush(data)  # a whole batch already: written as it is, not copied
            return
        self._buffer += data
        if len(self._buffer) >= limit:
            chunk, self._buffer = self._buffer, bytearray()
            await self._flush(chunk)

    async def _flush(self, chunk: bytes | bytearray) -> None:
        try:
            if self._fh is not None:
                await _on_disk(self._fh.write, chunk)
                return
            self._touched = True
            opening = asyncio.ensure_future(_on_disk(self._storage._create_staged, self._staged,
                                                     chunk))
            try:
                self._fh = await asyncio.shield(opening)
            except asyncio.CancelledError:
                # The thread still creates the file: close and remove it once it has.
                opening.add_done_callback(lambda done: _discard_opened(done, self._staged))
                raise
        except OSError as exc:
            await self.abort()
            raise _map_os_error(exc, "writing", self.key) from exc

    async def commit(self) -> None:
        await self.commit_together([self], [])

    @staticmethod
    async def commit_together(writers: list[LocalWriter], committed: list[LocalWriter]) -> None:
        """``commit()`` of each writer in turn, in one trip to the disk threads (an upload's
        valid and error objects: one thread hop, not two; each hop wakes a thread that takes
        the GIL from the event loop). Each committed writer is appended to ``committed``; the
        first failure aborts its writer and is raised, the writers after it left open."""
        pending: list[tuple[LocalWriter, bytes]] = []
        for writer in writers:
            if writer._state == "committed":
                committed.append(writer)
                continue
            if writer._state != "open":
                raise StorageError(f"writer for {writer.key} is {writer._state}",
                                   code="writer_aborted", key=writer.key)
            pending.append((writer, bytes(writer._buffer)))
            writer._buffer = bytearray()
            writer._touched = True
        published: list[LocalWriter] = []

        def publish() -> None:
            for writer, rest in pending:
                writer._publish(rest)
                published.append(writer)

        try:
            await _on_disk(publish)
        except OSError as exc:
            failed = pending[len(published)][0]
            await failed.abort()
            raise _map_os_error(exc, "publishing", failed.key) from exc
        finally:
            for writer in published:
                writer._state = "committed"
                committed.append(writer)

    def _publish(self, rest: bytes) -> None:
        """The last bytes, then fsync, rename into place, fsync the folder; in one thread."""
        if self._fh is None:  # the whole object at once: no buffered file needed
            self._storage._write_staged(self._staged, rest)
        else:
            if rest:
                self._fh.write(rest)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        target = self._storage.path_of(self.key)
        try:  # the folder is usually there: no mkdir (a failed syscall and an exception)
            os.replace(self._staged, target)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._staged, target)
        _fsync_dir(target.parent)

    async def abort(self) -> None:
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer = bytearray()
        if self._touched:
            await _on_disk(self._discard)

    def _discard(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass  # closing may flush into a full disk; the file is deleted next anyway
            self._fh = None
        self._staged.unlink(missing_ok=True)

    async def revert(self) -> None:
        if self._state == "committed":
            await self._storage.delete(self.key)


def _in_staging(staged: Path, create: Callable[[], T]) -> T:
    """``create()`` of the staged file ``staged``, the staging folder made again (up to twice)
    when it was removed under us (by hand)."""
    for _ in range(2):
        try:
            return create()
        except FileNotFoundError:
            staged.parent.mkdir(parents=True, exist_ok=True)
    return create()


def _discard_opened(opening: asyncio.Future, staged: Path) -> None:
    """Done-callback for a staged file opened for a writer whose caller went away."""
    if opening.cancelled() or opening.exception() is not None:
        return
    opening.result().close()
    staged.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    """Make the rename durable; some filesystems refuse fsync on a directory, which is fine."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # best effort: the data itself was fsynced before the rename
    finally:
        os.close(fd)


class LocalStorage:
    """Published objects at ``<root>/<key>``; staged data under ``<root>/.staging``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.staging = self.root / STAGING_DIR

    def path_of(self, key: str) -> Path:
        return self.root / validate_key(key)

    async def start(self) -> None:
        await asyncio.to_thread(self.staging.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    async def open_writer(self, key: str, *, upload_id: str) -> LocalWriter:
        validate_key(key)
        # Unique in this root: the upload, this process's random prefix and a counter (no
        # uuid4, whose os.urandom is a syscall on the event loop for every object).
        name = f"{validate_upload_id(upload_id)}.{_STAGED_PREFIX}-{next(_staged_seq)}.part"
        return LocalWriter(self, key, self.staging / name)

    def _write_staged(self, staged: Path, data: bytes) -> None:
        """Create ``staged`` holding ``data``, fsynced (in a disk thread): a small object's
        one trip. Plain descriptor calls, not ``open()``, whose buffered file adds an fstat, an
        isatty ioctl and an lseek: each a system call, and each a release and retaking of the
        GIL by a disk thread while the event loop runs (strace of the server under 32 small
        uploads in flight: futex calls per object published 79 -> 60)."""
        fd = _in_staging(staged, lambda: os.open(
            staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
        try:
            view = memoryview(data)
            while view:  # a write may be short (a nearly full disk); ENOSPC raises
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            staged.unlink(missing_ok=True)
            raise
        os.close(fd)

    def _create_staged(self, staged: Path, first: bytes) -> BinaryIO:
        """Create a writer's staged file (in a disk thread) holding ``first``."""
        # Buffered, because a raw write may be short on a nearly full disk, while
        # BufferedWriter.write retries until it is done or raises ENOSPC.
        fh = _in_staging(staged, lambda: open(staged, "xb"))  # noqa: SIM115 - the writer owns it
        try:
            fh.write(first)
        except BaseException:
            fh.close()
            staged.unlink(missing_ok=True)
            raise
        return fh

    async def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"no object {key}", code="object_not_found", key=key) from exc
        except OSError as exc:
            raise _map_os_error(exc, "reading", key) from exc
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(fh.read, chunk_size)
                except OSError as exc:
                    raise _map_os_error(exc, "reading", key) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            fh.close()

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except IsADirectoryError:
            return  # a folder is not an object: nothing to delete
        except OSError as exc:
            raise _map_os_error(exc, "deleting", key) from exc

    async def cleanup_staged(self, upload_id: str | None = None,
                             older_than_s: float | None = None) -> int:
        """Remove staged files: of one upload, and/or idle for more than ``older_than_s``.

        Age is idle time (a file's mtime moves with every flush of ~1 MiB), so ``older_than_s``
        must exceed the longest pause a live upload may take between two MiB. With neither
        argument every staged file goes: only safe when nothing else writes to this root.
        """
        if upload_id is not None:
            validate_upload_id(upload_id)
        if older_than_s is not None and older_than_s < 0:
            raise InvalidStorageArgument("older_than_s must be >= 0", code="invalid_argument")
        return await asyncio.to_thread(self._cleanup, upload_id, older_than_s)

    def _cleanup(self, upload_id: str | None, older_than_s: float | None) -> int:
        if not self.staging.is_dir():
            return 0
        cutoff = None if older_than_s is None else time.time() - older_than_s
        if upload_id is None:
            entries = list(self.staging.iterdir())
        else:  # its files, and its folder (as earlier versions staged an upload)
            entries = [*self.staging.glob(f"{upload_id}.*"), self.staging / upload_id]
        removed = 0
        for entry in entries:
            if entry.is_dir():  # an upload's folder (older versions), a tus upload's
                removed += self._remove_old(list(entry.iterdir()), cutoff)
                self._prune_staging_dir(entry)
            else:
                removed += self._remove_old([entry], cutoff)
        return removed

    @staticmethod
    def _remove_old(paths: list[Path], cutoff: float | None) -> int:
        removed = 0
        for staged in paths:
            try:
                if cutoff is not None and staged.stat().st_mtime > cutoff:
                    continue
                if staged.is_dir():  # nothing creates these; remove rather than trip on it
                    shutil.rmtree(staged)
                else:
                    staged.unlink()
                removed += 1
            except FileNotFoundError:
                continue  # its writer finished or aborted meanwhile
        return removed

    def _prune_staging_dir(self, directory: Path) -> None:
        try:
            directory.rmdir()
        except OSError:
            pass  # not empty (a file still staged) or already gone

    async def presigned_url(self, key: str, expires_s: int) -> str | None:
        return None  # no one but us serves these files: the caller signs a link to itself

    async def check(self) -> None:
        def probe() -> bool:
            return self.staging.is_dir() and os.access(self.staging, os.W_OK | os.X_OK)

        if not await asyncio.to_thread(probe):
            raise StorageError(f"storage root {self.root} is not a writable directory",
                               code="storage_unavailable")
