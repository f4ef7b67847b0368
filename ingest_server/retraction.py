"""Retracting an upload that should not have landed: its objects go, its record stays.

Object stores have no multi-object transaction, so the record carries the atomicity: the upload
is first marked ``retracting`` (with who asked and when), then each object is deleted, and only
when every delete succeeded does it become ``retracted``. A failed delete leaves it
``retracting`` with ``retract_error`` saying which keys remain, and the caller gets an error;
retracting again finishes the job (deleting an object already gone is not an error). Nothing is
ever reported as retracted while one of its objects is still there.

No record is left pointing at objects that are gone:

- A duplicate (the same client's same bytes, answered with an earlier upload's objects,
  ``duplicate_of``) is the same landing as its original: retracting the original retracts its
  duplicates with it (the data is out of the folders, so every record that said it was landed
  says retracted). Retracting a duplicate alone deletes nothing: the original still owns, and
  answers for, the objects.
- Only keys the upload still owns are deleted (``object_owners``): in the cqube layout a later
  upload of the same name may have replaced its object, which is then the later upload's.
"""

from __future__ import annotations

import logging
from typing import Any

from .stores.db import transaction
from .errors import Conflict, IngestError, StorageError
from .logs import log_event
from .stores.object_owners import foreign, lock, object_parts
from .storage import Storage
from .stores.uploads import UploadStore

log = logging.getLogger("ingest_server.retraction")

def object_keys(record: dict[str, Any]) -> list[str]:
    """The keys this upload published itself. A duplicate upload points at an earlier upload's
    objects (``duplicate_of``): those belong to the earlier one and are not its to delete."""
    if (record.get("objects") or {}).get("duplicate_of"):
        return []
    return [key for _, key in object_parts(record.get("objects"))]


async def retract(uploads: UploadStore, storage: Storage, record: dict[str, Any],
                  by: str, datasets: Any = None) -> dict[str, Any]:
    """Remove ``record``'s objects and keep it as ``retracted``; the updated record. With
    ``datasets`` (processing), its contribution to the dataset tables is taken out first (a
    duplicate contributed nothing of its own)."""
    upload_id = record["id"]
    if record["status"] == "retracted":
        return record
    if record["status"] not in ("uploaded", "retracting") or record["dry_run"]:
        raise Conflict(f"only an uploaded file can be retracted; this one is {record['status']}"
                       + (" (a dry run wrote nothing)" if record["dry_run"] else ""),
                       code="not_retractable", status_now=record["status"])
    original = (record.get("objects") or {}).get("duplicate_of")
    if original is not None:
        return await _retract_duplicate(uploads, storage, record, original, by)
    if not await uploads.mark_retracting(upload_id, by, with_duplicates=True):  # changed meanwhile
        return await retract(uploads, storage, await uploads.get(upload_id), by, datasets)
    if datasets is not None:  # a failure leaves it 'retracting'; retracting again finishes
        await datasets.retract(record)
    keys = object_keys(record)
    kept, remaining = await _delete_owned(uploads, storage, upload_id, keys)
    if remaining:
        await uploads.retract_incomplete(upload_id, {
            "code": "retract_incomplete", "message": f"{len(remaining)} of {len(keys)} objects "
            "could not be deleted; retract again to finish", "remaining": remaining})
        log_event(log, logging.WARNING, "upload retraction incomplete", event="upload_retract_failed",
                  upload_id=upload_id, client=by, remaining=[r["key"] for r in remaining])
        raise StorageError(f"{len(remaining)} of {len(keys)} objects could not be deleted; the "
                           "upload stays 'retracting': retract it again to finish",
                           code="retract_incomplete", remaining=[r["key"] for r in remaining])
    await uploads.retracted(upload_id)
    log_event(log, logging.INFO, "upload retracted", event="upload_retracted", upload_id=upload_id,
              client=by, owner=record["client"], objects=[k for k in keys if k not in kept],
              replaced_kept=sorted(kept))
    return await uploads.get(upload_id)


async def _delete_owned(uploads: UploadStore, storage: Storage, upload_id: str,
                        keys: list[str]) -> tuple[set[str], list[dict[str, Any]]]:
    """Delete those of ``keys`` that ``upload_id`` still owns, under their locks (no upload
    replaces one meanwhile); the keys kept as another upload's, and what could not be deleted."""
    remaining: list[dict[str, Any]] = []
    async with transaction(uploads.pool) as conn:
        await lock(conn, keys)
        theirs = await foreign(conn, upload_id, keys)
        for key in keys:
            if key in theirs:
                continue  # replaced by a later upload: its object now, not ours to delete
            try:
                await storage.delete(key)
            except IngestError as e:
                remaining.append({"key": key, "code": e.code, "message": e.message})
    return theirs, remaining


async def _retract_duplicate(uploads: UploadStore, storage: Storage, record: dict[str, Any],
                             original_id: str, by: str) -> dict[str, Any]:
    """A duplicate owns no object. Left ``retracting`` by its original's unfinished retraction,
    retracting it finishes the original's (and so its own); else only its record changes."""
    original = await uploads.get(original_id)
    if record["status"] == "retracting" and original is not None \
            and original["status"] == "retracting":
        await retract(uploads, storage, original, by)
        return await uploads.get(record["id"])
    if not await uploads.mark_retracting(record["id"], by):
        return await retract(uploads, storage, await uploads.get(record["id"]), by)
    await uploads.retracted(record["id"])
    log_event(log, logging.INFO, "upload retracted", event="upload_retracted",
              upload_id=record["id"], client=by, owner=record["client"], objects=[],
              duplicate_of=original_id)
    return await uploads.get(record["id"])
