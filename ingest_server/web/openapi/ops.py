"""The building blocks of the OpenAPI document: operations, parameters, and error codes
grouped as they answer together, each code under the status errors.ERROR_CODES gives it (the one
list of codes: nothing here names a status for a code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ... import errors
from .schemas import Schema

JSON = "application/json"


def codes(*names: str) -> dict[int, list[str]]:
    """Error codes by the status errors.ERROR_CODES gives each (KeyError: add it there)."""
    out: dict[int, list[str]] = {}
    for name in names:
        out.setdefault(errors.status_of(name), []).append(name)
    return out

# Groups of codes that answer together; each code's status is the one errors.py gives it.
AUTH_ERRORS = codes("missing_token", "invalid_token", "token_expired", "token_revoked",
                    "insufficient_scope")
SERVER_ERRORS = codes("internal_error")
DB_ERRORS = codes("db_unavailable")
STORAGE_ERRORS = codes("storage_error", "storage_unavailable", "insufficient_storage")
SPEC_BODY_ERRORS = codes("unknown_kind", "invalid_json", "invalid_spec", "invalid_name",
                         "body_too_large")
FILE_ERRORS = [c for c in errors.FILE if c != "file_rejected"]  # the class default: never sent
FORM_ERRORS = [c for c in errors.FORM if c != "bad_request"]
ZIP_ERRORS = [c for c in errors.ZIP if c != "zip_rejected"]
READING_ERRORS = list(errors.READING)  # how a file (a workbook) is read
UPLOAD_ERRORS = codes("spec_not_found", "body_timeout", "upload_in_progress", "key_conflict",
                      "upload_too_large", "not_multipart", "unsupported_file_type",
                      "unsupported_content_encoding", "idempotency_key_reused", "worker_crashed",
                      "plugin_error")

def json_body(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def param(name: str, where: str, description: str, schema: Schema | None = None, *,
          required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": schema or {"type": "string"}}


def path_param(name: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    return param(name, "path", description, schema, required=True)


@dataclass(frozen=True)
class Op:
    """One operation. ``scope``: the token scope it needs; None for public ones."""

    method: str
    path: str
    summary: str
    tag: str
    scope: str | None
    responses: dict[int, dict[str, Any]]
    description: str = ""
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    errors: dict[int, list[str]] = field(default_factory=dict)
    security: list[dict[str, list[str]]] | None = None


def merge(*groups: dict[int, list[str]] | list[str]) -> dict[int, list[str]]:
    """The union of groups of codes (lists, or the maps ``codes`` makes), each under its status
    from errors.ERROR_CODES."""
    out: dict[int, list[str]] = {}
    for group in groups:
        names = [c for cs in group.values() for c in cs] if isinstance(group, dict) else group
        for name in names:
            bucket = out.setdefault(errors.status_of(name), [])
            if name not in bucket:
                bucket.append(name)
    return out
