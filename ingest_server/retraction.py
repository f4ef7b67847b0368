"""Retracting an upload that should not have landed: its objects go, its record stays.

Object stores have no multi-object transaction, so the record carries the atomicity: the upload
is first marked ``retracting`` (with who asked and when), then each object is deleted, and only
when every delete succeeded does it become ``retracted``. A failed delete leaves it
``retracting`` with ``retract_error`` saying which keys remain, and the caller gets an error;
retracting again finishes the job (deleting an object already gone is not an error). Nothing is
ever reported as retracted while one of its objects is still there.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import Conflict, IngestError, StorageError
from .logs import log_event
from .storage import Storage
from .uploads import UploadStore

log = logging.getLogger("ingest_server.retraction")

def object_keys(record: dict[str, Any]) -> list[str]:
    """The keys this upload published itself. A duplicate upload points at an earlier upload's
    objects (``duplicate_of``): those belong to the earlier one and are not its to delete."""
    objects = record.get("objects") or {}
    if objects.get("duplicate_of"):
        return []
    keys: list[str] = []
    for part in ("valid", "errors"):
        value = objects.get(part)
        for key in value if isinstance(value, list) else [value]:
            if isinstance(key, str) and key and key not in keys:
                keys.append(key)
    return keys


async def retract(uploads: UploadStore, storage: Storage, record: dict[str, Any],
                  by: str, datasets: Any = None) -> dict[str, Any]:
    """Remove ``record``'s objects and keep it as ``retracted``; the updated record. With
    ``datasets`` (processing), its contribution to the dataset tables is taken out first."""
    upload_id = record["id"]
    if record["status"] == "retracted":
        return record
    if record["status"] not in ("uploaded", "retracting") or record["dry_run"]:
        raise Conflict(f"only an uploaded file can be retracted; this one is {record['status']}"
                       + (" (a dry run wrote nothing)" if record["dry_run"] else ""),
                       code="not_retractable", status_now=record["status"])
    if not await uploads.mark_retracting(upload_id, by):  # changed meanwhile
        return await retract(uploads, storage, await uploads.get(upload_id), by, datasets)
    if datasets is not None:  # a failure leaves it 'retracting'; retracting again finishes
        await datasets.retract(record)
    keys = object_keys(record)
    remaining = []
    for key in keys:
        try:
            await storage.delete(key)
        except IngestError as e:
            remaining.append({"key": key, "code": e.code, "message": e.message})
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
              client=by, owner=record["client"], objects=keys)
    return await uploads.get(upload_id)
