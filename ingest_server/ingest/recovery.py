"""Crash recovery: uploads whose process died are failed, and their staged data removed.

Runs at start-up and then periodically in every process. It fails the uploads of dead processes of
this host at once (each upload records its owner ``host:pid:token``), and any upload whose heartbeat
stopped (``ingest.stale_upload_s``), so uploads of live replicas are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from ..errors import IngestError
from ..storage.base import Storage
from ..stores.uploads import UploadStore

log = logging.getLogger("ingest_server.recovery")


_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """This process as upload rows name it, ``host:pid:token``: made on first use, not at import,
    and again in a forked child (the token tells a reused pid from its earlier life)."""
    global _owner
    if _owner is None or _owner[0] != os.getpid():
        _owner = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _owner[1]


def owner_is_dead(owner: str) -> bool:
    """Whether the process named by an ``owner`` value of this host is gone."""
    _, pid_text, token = owner.rsplit(":", 2)
    pid = int(pid_text)
    if pid == os.getpid():
        # same pid, earlier life (e.g. pid 1 in a container)
        return token != process_owner().rsplit(":", 1)[1]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def recover(uploads: UploadStore, storage: Storage, stale_s: float,
                  unclean: set[str] | None = None) -> list[str]:
    """Fail the uploads of dead processes and stale heartbeats, remove their staged data, and
    retry the cleanup of this process's failed uploads in ``unclean`` (emptied as it succeeds)."""
    failed = await uploads.fail_orphans(socket.gethostname(), owner_is_dead)
    failed += await uploads.fail_stale(stale_s)
    for upload_id in failed:
        removed = await storage.cleanup_staged(upload_id=upload_id)
        log.warning("upload %s was interrupted: marked failed, %d staged objects removed",
                    upload_id, removed)
    # Staged data no live upload can own any more (its heartbeat would have been refreshed).
    await storage.cleanup_staged(older_than_s=max(stale_s * 4, 86400.0))
    for upload_id in list(unclean or ()):
        removed = await storage.cleanup_staged(upload_id=upload_id)
        unclean.discard(upload_id)
        if removed:
            log.warning("upload %s: %d staged objects its failure left were removed",
                        upload_id, removed)
    return failed


async def recover_forever(uploads: UploadStore, storage: Storage, stale_s: float,
                          every_s: float = 60.0, unclean: set[str] | None = None) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await recover(uploads, storage, stale_s, unclean)
        except (IngestError, OSError) as e:  # the stores raise IngestError for the database
            log.warning("periodic recovery failed: %s", e)
