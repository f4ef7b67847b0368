"""The storage contract shared by every backend, key validation, and all-or-nothing publishing.

An upload writes one or more objects (the valid rows, the rejected rows, every member of a zip).
Each is written through an :class:`ObjectWriter` that keeps it invisible until ``commit()``;
:func:`publish_all` commits a set of them so they appear together or not at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from ingest_server.errors import IngestError, InvalidStorageArgument, StorageError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
DEFAULT_CHUNK_SIZE = 256 * 1024
# The local backend stages under <root>/.staging; refused on every backend so keys stay portable.
STAGING_DIR = ".staging"
# Upload ids name a staging directory and are matched inside S3 keys: keep them plain.
_UPLOAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``InvalidStorageArgument(invalid_key)``.

    Keys are built from templates, but parts of them may come from client fields, so this is the
    last line of defence against path traversal on the local backend (and odd keys on S3).
    """
    reason = _key_problem(key)
    if reason:
        raise InvalidStorageArgument(f"invalid object key: {reason}", code="invalid_key", key=repr(key)[:200])
    return key


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or not key:
        return "empty"
    if not key.isprintable():  # also refuses NUL, newlines, controls and lone surrogates
        return "not printable"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    if "\\" in key:
        return "backslash"
    if key.startswith("/"):
        return "leading '/'"
    if key.split("/", 1)[0] == STAGING_DIR:
        return f"'{STAGING_DIR}' is reserved"
    for segment in key.split("/"):
        if not segment:
            return "empty segment"
        if segment in (".", ".."):
            return f"'{segment}' segment"
    return None


def validate_prefix(prefix: str) -> str:
    """A listing prefix may end mid-segment or with '/', but must not escape the root."""
    if prefix == "":
        return prefix
    # A prefix is a key with an optional trailing '/' (and possibly a partial last segment).
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def validate_upload_id(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise InvalidStorageArgument("invalid upload id", code="invalid_upload_id",
                         upload_id=repr(upload_id)[:200])
    return upload_id


@runtime_checkable
class ObjectWriter(Protocol):
    """One object being written; invisible under ``key`` until :meth:`commit`."""

    key: str
    bytes_written: int

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """Publish atomically under ``key``. Committing twice is a no-op; after abort it raises."""

    async def abort(self) -> None:
        """Remove everything written. Idempotent; a no-op after commit."""

    async def revert(self) -> None:
        """Delete the object a successful :meth:`commit` published (rollback of a group).

        In the native layout keys are unique per upload, so this never removes someone else's
        object; in the cqube layout the object it replaced is not brought back.
        """


@runtime_checkable
class Storage(Protocol):
    async def start(self) -> None:
        """Connect, and create the root directory or bucket if missing."""

    async def close(self) -> None: ...

    async def open_writer(self, key: str, *, upload_id: str) -> ObjectWriter: ...

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Async generator of the object's bytes; ``NotFound(object_not_found)`` if missing."""

    async def delete(self, key: str) -> None:
        """Remove a published object; deleting a missing one is not an error."""

    async def cleanup_staged(self, upload_id: str | None = None,
                             older_than_s: float | None = None) -> int:
        """Remove uncommitted data left by a crash; returns how many staged objects went."""

    async def check(self) -> None:
        """Cheap health probe; raises ``StorageError`` when the store is unreachable."""

    async def presigned_url(self, key: str, expires_s: int) -> str | None:
        """A URL that downloads ``key`` without our token for ``expires_s`` seconds, when the
        store can issue one (S3); None otherwise (the caller serves a signed link itself)."""


async def _each(writers: Sequence[ObjectWriter], action: str) -> None:
    """Call ``action`` ("abort" or "revert") on every writer; a failure is logged, never raised,
    so the others still get their turn (best effort cleanup on an error path)."""
    for writer in writers:
        try:
            await getattr(writer, action)()
        except Exception:  # noqa: BLE001 - keep cleaning up the rest
            log.exception("%s of object %s failed", action, writer.key)


async def abort_all(writers: Sequence[ObjectWriter]) -> None:
    """Abort every writer: nothing they staged remains."""
    await _each(writers, "abort")


async def revert_all(writers: Sequence[ObjectWriter]) -> None:
    """Delete the published objects of ``writers``."""
    await _each(writers, "revert")


async def publish_all(writers: Sequence[ObjectWriter]) -> None:
    """Commit every writer, or leave none of them visible.

    If a commit fails, the uncommitted writers are aborted and the already committed objects are
    deleted (best effort, failures logged), then the failure is raised as ``StorageError``.
    """
    committed: list[ObjectWriter] = []
    together = _commit_together(writers)
    try:
        if together is not None:
            await together(writers, committed)
        else:
            for writer in writers:
                await writer.commit()
                committed.append(writer)
    except BaseException as exc:
        # Also on cancellation: half a group must not stay visible.
        rest = [w for w in writers if not any(w is c for c in committed)]
        await abort_all(rest)
        await revert_all(committed)
        if isinstance(exc, StorageError) or not isinstance(exc, Exception):
            raise
        failed = rest[0] if rest else writers[-1]
        # Keep a more specific code and status (e.g. 507 insufficient_storage).
        specific = isinstance(exc, IngestError)
        raise StorageError(f"publishing {failed.key} failed: {exc}",
                           code=exc.code if specific else None,
                           status=exc.status if specific else None,
                           key=failed.key) from exc


def _commit_together(writers: Sequence[ObjectWriter]):
    """A backend's ``commit_together(writers, committed)`` (its writers committed in one go,
    each appended to ``committed`` once it is), when every writer is of that one kind."""
    kind = type(writers[0]) if writers else None
    together = getattr(kind, "commit_together", None)
    if together is None or any(type(w) is not kind for w in writers):
        return None
    return together
