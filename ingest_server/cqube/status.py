"""cQube's file-status words and body, from our upload records."""

from __future__ import annotations

from typing import Any

NOT_FOUND_REASON = {"event": "No event found", "dimension": "No dimension found",
                    "dataset": "No dataset found"}


def tracked_as_national(filename: str, ingestion_type: str, ingestion_name: str) -> bool:
    """cQube tracks a national ZIP under ``ingestion_type=event`` and ``ingestion_name=<the
    ZIP's name without .zip>``: is this file-status query asking for one?"""
    stem = filename[:-4] if filename.lower().endswith(".zip") else None
    return ingestion_type == "event" and stem == ingestion_name


def reason(record: dict[str, Any]) -> str | None:
    """Why an upload landed nothing for downstream processing, in cQube's words where it has
    some (``No event found``), else ours; None when it landed rows."""
    error = record.get("error") or {}
    if record["status"] in ("retracting", "retracted"):
        return f"Retracted by {record.get('retracted_by')}: its files were deleted"
    if record["status"] in ("rejected", "failed"):
        if error.get("code") == "spec_not_found":
            return NOT_FOUND_REASON.get(record.get("kind") or "", "No event found")
        return error.get("message") or None
    if record["status"] == "uploaded" and record["valid_rows"] == 0 and record["invalid_rows"]:
        return f"All {record['invalid_rows']} records are invalid (see the error file)"
    return None


def file_status_word(record: dict[str, Any]) -> str:
    """``Upload_in_progress``, ``Uploaded``, ``Error`` or ``Error -><reason>``."""
    if record["status"] == "receiving":
        return "Upload_in_progress"
    why = reason(record)
    if record["status"] == "uploaded" and why is None:
        return "Uploaded"
    return f"Error ->{why}" if why else "Error"


def file_status_body(record: dict[str, Any]) -> dict[str, Any]:
    """``{"response": {...}}`` as cQube's ``GET /file-status`` answers."""
    return {"response": {
        "pid": record["pid"],
        "file_name": record["filename"],
        "file_status": file_status_word(record),
        "created_at": record["started_at"],
        "total_data_count": record["total_rows"] or 0,
        "processed_data_count": record["valid_rows"] or 0,
        "error_data_count": record["invalid_rows"] or 0,
    }}
