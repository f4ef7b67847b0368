"""Concluding an upload that was read to its end: publish (or find it a duplicate) or abort,
and record the outcome. The duplicate check and the publish are one step per key, across
processes and replicas (``UploadStore.dedup_locked``)."""

from __future__ import annotations

from typing import Any

from ..stores import object_owners
from ..aio import uncancellable
from ..bounded import bounded
from ..config import Settings
from ..storage.base import abort_all, publish_all, revert_all
from ..stores.uploads import Claim, UploadRecord, UploadStore
from . import idempotency
from .layout import Layout
from .model import MemberOutcome, Upload, UploadRequest


async def conclude(settings: Settings, layout: Layout, uploads: UploadStore, req: UploadRequest,
                   upload: Upload) -> UploadRecord:
    """Publish or abort the staged objects of ``upload`` and record the outcome; the record."""
    members = upload.members
    writers = [w for m in members if m.csv for w in m.csv.writers]
    totals = {k: sum(getattr(m.csv, k) for m in members if m.csv)
              for k in ("total_rows", "valid_rows", "invalid_rows")}
    sha = upload.stats.hexdigest()
    status, error, objects = "uploaded", None, _objects(req, members)
    over = [m for m in members if m.csv and req.max_error_rate is not None
            and m.csv.error_rate > req.max_error_rate]
    ingested = [m for m in members if m.csv]
    if not ingested:
        status = "rejected"
        error = {"code": "nothing_ingested", "message": "no file of this upload could be "
                 "validated (see the members' errors)"}
    elif over:
        status = "rejected"
        m = over[0]
        error = {"code": "error_rate_exceeded",
                 "message": f"{m.name}: {m.csv.invalid_rows} of {m.csv.total_rows} rows "
                            f"rejected ({m.csv.error_rate:.2%}), above max_error_rate "
                            f"{req.max_error_rate:.2%}; nothing was written",
                 "members": [x.name for x in over]}
    earlier, published = None, False
    finish = dict(status=status, sha256=sha, nbytes=upload.stats.nbytes, error=error,
                  spec_version=members[0].spec_version if len(members) == 1 else None,
                  http_status=200, read_sha256=sha, read_complete=upload.stats.complete,
                  **totals)
    national = req.program_type.archive  # one member per CSV of the archive
    warnings = _warnings(members, national)
    if status != "uploaded" or req.dry_run:
        await abort_all(writers)
        record = await uploads.finish(
            upload.upload_id, objects={"valid": None, "errors": None},
            members=_members_json(members, False, None) if national else None,
            errors_sample=_sample(members, national, settings.limits.errors_sample),
            warnings=warnings, **finish)
        return record or await uploads.get(upload.upload_id)
    key = idempotency.dedup_key(req, sha, [(m.name, m.spec_version) for m in ingested])
    # A layout whose keys a later upload may take over (cqube) lands the same bytes again.
    dedup = layout.finds_duplicates and settings.ingest.idempotency_window_s > 0
    # Ownership of the keys changes with what the store holds (object_owners.py): their locks
    # are taken with the dedup key's (harmless when a duplicate publishes nothing after all).
    parts = object_owners.object_parts(objects)
    try:
        # The check and the publish are one step per key, across processes and replicas.
        async with uploads.dedup_locked(key, [k for _, k in parts]) as conn:
            if dedup:
                earlier = await uploads.find_duplicate(
                    conn, dedup_key=key, exclude_id=upload.upload_id,
                    window_s=settings.ingest.idempotency_window_s)
            if earlier is not None:
                await abort_all(writers)
                # The upload that wrote the objects, even when `earlier` was a duplicate.
                original = earlier["objects"].get("duplicate_of") or earlier["id"]
                objects = dict(earlier["objects"], duplicate_of=original)
            else:
                await publish_all(writers)
                published = True
            record = await uploads.finish(
                upload.upload_id, objects=objects, dedup_key=key, conn=conn,
                members=_members_json(members, published, earlier) if national else None,
                errors_sample=_sample(members, national, settings.limits.errors_sample),
                warnings=warnings, claim=Claim(req.client, parts) if published else None,
                **finish)
    except BaseException:
        if published:  # not recorded as uploaded: take the objects back, as if never landed
            await uncancellable(revert_all(writers))
        raise
    return record or await uploads.get(upload.upload_id)

def _sample(members: list[MemberOutcome], per_member: bool, limit: int) -> list[dict[str, Any]]:
    sample = [dict(e, member=m.name) if per_member else e
              for m in members if m.csv for e in m.csv.errors_sample]
    return sample[:limit]

def _warnings(members: list[MemberOutcome], per_member: bool) -> list[dict[str, Any]]:
    # Bounded: a warning may quote the client's header (a 3 MB column name).
    return [bounded(dict(w, details={**w.get("details", {}), "member": m.name})
                    if per_member else w)
            for m in members if m.csv for w in m.csv.warnings]

def _members_json(members: list[MemberOutcome], published: bool,
                  earlier: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per-member results. Keys are only shown for objects that exist: a rejected or dry
    run upload has none, a duplicate points at the earlier upload's."""
    out = [m.to_json() for m in members]
    if not published:
        before = {m["name"]: m["objects"] for m in (earlier or {}).get("members") or []}
        for m in out:
            m["objects"] = before.get(m["name"], {"valid": None, "errors": None})
    return out

def _objects(req: UploadRequest, members: list[MemberOutcome]) -> dict[str, Any]:
    if req.program_type.archive:
        return {"valid": [m.csv.valid_key for m in members if m.csv and m.csv.valid_key],
                "errors": [m.csv.error_key for m in members if m.csv and m.csv.error_key]}
    c = members[0].csv
    return {"valid": c.valid_key, "errors": c.error_key}
