"""The JSON shape of an upload, the same for the upload answer, replays and status requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..stores.uploads import UploadRecord

MESSAGES = {
    "uploaded": "file accepted: {valid_rows} valid and {invalid_rows} rejected rows of {total_rows}",
    "rejected": "file rejected: nothing was written",
    "failed": "upload failed: nothing was written",
    "receiving": "upload in progress",
    "retracting": "retraction in progress: some objects could not be deleted yet; retract again",
    "retracted": "retracted: its objects were deleted",
}


def _no_objects(route: str) -> dict[str, Any]:
    """The ``objects`` of an upload that published nothing, in its route's usual shape."""
    return {"valid": [], "errors": []} if route == "national_programs" else \
        {"valid": None, "errors": None}


def response_body(record: UploadRecord) -> dict[str, Any]:
    status = record["status"]
    body = {
        "upload_id": record["id"],
        "status": status,
        "message": MESSAGES[status].format(**record),
        "route": record["route"],
        "filename": record["filename"],
        "ingestion_type": record["kind"],
        "ingestion_name": record["ingestion_name"],
        "program_name": record["program"],
        "spec_version": record["spec_version"],
        "dry_run": record["dry_run"],
        "bytes": record["bytes"],
        "sha256": record["sha256"],
        "total_rows": record["total_rows"],
        "valid_rows": record["valid_rows"],
        "invalid_rows": record["invalid_rows"],
        "objects": record["objects"] or _no_objects(record["route"]),
        "errors_sample": record["errors_sample"],
        "warnings": record.get("warnings") or [],
        "error": record["error"],
        "started_at": record["started_at"],
        "finished_at": record["finished_at"],
        "client": record.get("client"),
    }
    if record.get("retracted_by") is not None:
        body.update(retracted_at=record["retracted_at"], retracted_by=record["retracted_by"],
                    retract_error=record.get("retract_error"))
    if record.get("replaced"):  # cqube layout: a later upload of the same name replaced these
        body["replaced"] = record["replaced"]
    if record.get("members") is not None:
        body["members"] = record["members"]
    if record.get("processing") is not None:
        body["processing"] = record["processing"]
    duplicate_of = (record["objects"] or {}).get("duplicate_of")
    if status == "uploaded" and duplicate_of:
        body["message"] = (f"duplicate of {duplicate_of}: the same file was landed already, "
                           "nothing new was written (" + body["message"].split(": ", 1)[1] + ")")
    elif status == "uploaded" and not record["objects"].get("errors"):
        body["message"] += " (no rejected rows, so no error file)" if not record["dry_run"] else ""
    if record["dry_run"]:
        body["message"] += " (dry run: nothing was written)"
    return body
