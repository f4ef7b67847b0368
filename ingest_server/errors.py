"""Domain errors. Each carries an HTTP ``status`` and a stable ``code``.

One middleware (``ingest_server.web.middleware``) turns any of them into the JSON error shape
``{"error": {"code", "message", "details"}}``. Domain code raises these and never imports aiohttp.
"""

from __future__ import annotations

from typing import Any

from .bounded import bounded, clip


class IngestError(Exception):
    """Base of every error a client may see. Subclasses set ``status`` and ``code``; an error
    raised with a ``code`` of the list below answers with that code's status (``status_of``)
    unless it is given one."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        elif code is not None and code in ERROR_CODES:
            self.status = ERROR_CODES[code]
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The JSON error shape; message and details cut to size (they may quote the input)."""
        return {"error": {"code": self.code, "message": clip(self.message),
                          "details": bounded(self.details)}}


class BadRequest(IngestError):
    status, code = 400, "bad_request"


class ConfigError(Exception):
    """Configuration is invalid; start-up stops with this message (names the key)."""


class Unauthorized(IngestError):
    status, code = 401, "unauthorized"


class Forbidden(IngestError):
    status, code = 403, "forbidden"


class NotFound(IngestError):
    status, code = 404, "not_found"


class SpecNotFound(NotFound):
    code = "spec_not_found"


class Conflict(IngestError):
    status, code = 409, "conflict"


class IdempotencyKeyReused(IngestError):
    """An Idempotency-Key sent again with another request (route, target, options or bytes)."""

    status, code = 422, "idempotency_key_reused"


class UploadTooLarge(IngestError):
    status, code = 413, "upload_too_large"


class UnsupportedMedia(IngestError):
    status, code = 415, "unsupported_media_type"


class InvalidSpec(IngestError):
    """A spec that cannot be translated or is not a valid Cerberus schema."""

    status, code = 400, "invalid_spec"


class FileRejected(IngestError):
    """A file-level problem found in the data itself (missing column, not a CSV, ...).

    ``code`` is set per instance: ``missing_column``, ``duplicate_header``, ``empty_file``, ...
    """

    status, code = 400, "file_rejected"


class ZipRejected(IngestError):
    """A hostile or malformed archive (``not_a_zip``, ``zip_slip``, ``zip_bomb``, ...)."""

    status, code = 400, "zip_rejected"


class RateLimited(IngestError):
    status, code = 429, "rate_limited"


class StorageError(IngestError):
    status, code = 502, "storage_error"


class InvalidStorageArgument(IngestError):
    """Storage refused an argument (an unsafe object key, an upload id, a negative age): the
    caller's mistake, not a storage failure. ``code`` per instance."""

    status, code = 400, "invalid_key"


class InsufficientStorage(IngestError):
    status, code = 507, "insufficient_storage"


class Gone(IngestError):
    status, code = 410, "upload_gone"


class PreconditionFailed(IngestError):
    status, code = 412, "unsupported_tus_version"


class Locked(IngestError):
    status, code = 423, "upload_locked"


class ChecksumMismatch(IngestError):
    """tus checksum extension: the body does not match ``Upload-Checksum``."""

    status, code = 460, "checksum_mismatch"


class DatabaseError(IngestError):
    """The database failed a request for a reason of its own (a store turns the driver's errors
    into this, so nothing above the stores knows the driver)."""

    status, code = 500, "internal_error"


class DatabaseUnavailable(DatabaseError):
    status, code = 503, "db_unavailable"


class GrammarInvalid(IngestError):
    """A cQube grammar file cQube could not use; ``row`` and ``column`` (1-based, ``None`` when
    the problem is not one cell) name the cell, as in the file."""

    status, code = 400, "invalid_grammar"

    def __init__(self, row: int | None, column: int | None, message: str, **details: Any) -> None:
        where = "" if row is None else (f"row {row}: " if column is None
                                        else f"row {row}, column {column}: ")
        super().__init__(where + message, row=row, column=column, **details)
        self.row = row
        self.column = column


# -- every code a client may see, with its HTTP status ---------------------------------------------
# The one list: the OpenAPI document takes each code's status from here (web/openapi/document.py), the CLI
# its list of request codes (cli/main.py), and a test checks that every code raised is here.
# A group names codes that answer together (the form of an upload, a ZIP, the data itself).

AUTH = {"missing_token": 401, "invalid_token": 401, "token_expired": 401, "token_revoked": 401,
        "insufficient_scope": 403, "missing_credentials": 401, "invalid_client": 401,
        "unauthorized": 401, "forbidden": 403, "rate_limited": 429,
        "invalid_signature": 403, "link_expired": 403}
SERVER = {"internal_error": 500, "worker_crashed": 500, "plugin_error": 500, "not_supported": 501}
DATABASE = {"db_unavailable": 503, "embedded_database_in_use": 503}
STORAGE = {"storage_error": 502, "storage_unavailable": 502, "insufficient_storage": 507,
           "writer_closed": 502, "writer_aborted": 502, "staging_incomplete": 502,
           "invalid_key": 400, "invalid_upload_id": 400, "invalid_argument": 400}
SPEC_BODY = {"unknown_kind": 400, "invalid_json": 400, "invalid_spec": 400, "invalid_name": 400,
             "body_too_large": 413}
# The data itself: what the CSV reader and the header checks refuse (plugins may add codes with
# their own header checks).
FILE = {c: 400 for c in ("empty_file", "missing_column", "unknown_column",
                         "duplicate_header", "empty_header_name", "not_text", "not_a_csv",
                         "line_too_long", "unknown_encoding", "file_rejected",
                         "pattern_timeout")}
# The upload's form: about the request, not the data (the CLI says "fix the command line").
FORM = {c: 400 for c in ("missing_field", "invalid_field", "invalid_name",
                         "invalid_idempotency_key", "unknown_ingestion_type", "bad_multipart",
                         "too_many_parts", "too_many_files", "missing_file", "option_after_file",
                         "field_too_large", "conflicting_field", "reserved_name", "nul_character",
                         "bad_request")}
ZIP = {c: 400 for c in ("not_a_zip", "zip_truncated", "zip_corrupt", "zip_bad_member_name",
                        "zip_slip", "zip_nested_archive", "zip_encrypted", "zip_size_mismatch",
                        "zip_duplicate_member", "zip_empty", "zip_too_many_entries",
                        "zip_unsupported_compression", "zip_symlink", "zip_bomb",
                        "zip_non_csv_member", "zip_rejected")}
UPLOAD = {"spec_not_found": 404, "body_timeout": 408, "upload_in_progress": 409,
          "key_conflict": 409, "upload_too_large": 413, "zip_too_large": 413,
          "not_multipart": 415, "unsupported_file_type": 415, "unsupported_content_encoding": 415,
          "unsupported_media_type": 415, "idempotency_key_reused": 422, "connection_lost": 400,
          "invalid_body": 400}
RESUMABLE = {"missing_header": 400, "invalid_header": 400, "invalid_metadata": 400,
             "defer_length_unsupported": 400, "unsupported_checksum_algorithm": 400,
             "invalid_checksum": 400, "upload_length_exceeded": 413, "checksum_mismatch": 460,
             "unsupported_tus_version": 412, "upload_terminated": 410, "upload_expired": 410,
             "upload_gone": 410, "offset_mismatch": 409, "upload_locked": 423}
UPLOADS_API = {"upload_not_found": 404, "not_retractable": 409, "retract_incomplete": 502,
               "member_required": 400, "no_error_file": 404, "no_valid_file": 404,
               "member_not_found": 404, "object_not_found": 404, "upload_retracted": 410,
               "not_found": 404, "method_not_allowed": 405, "http_error": 400, "conflict": 409,
               "object_replaced": 410, "invalid_host": 400}
# cQube processing (DESIGN.md §12): grammar registration and the master-data check at upload.
PROCESSING = {"invalid_grammar": 400, "grammar_not_found": 404, "grammar_conflict": 409,
              "dimension_not_loaded": 400, "processing_disabled": 404}
# The datasets step (issue 24): in an upload's ``processing.error`` or a rebuild's answer.
DATASETS = {"program_not_registered": 404, "processing_failed": 500}

# Per-client quotas (config [quotas]): what one client may hold at once.
QUOTAS = {"too_many_open_uploads": 429, "upload_quota_exceeded": 413, "spec_version_quota": 429}
# Answered before a request is read (web/connections.py): server.max_connections reached.
CONNECTIONS = {"too_many_connections": 503}

ERROR_CODES: dict[str, int] = {}
for _group in (AUTH, SERVER, DATABASE, STORAGE, SPEC_BODY, FILE, FORM, ZIP, UPLOAD, RESUMABLE,
               UPLOADS_API, PROCESSING, DATASETS, QUOTAS, CONNECTIONS):
    ERROR_CODES.update(_group)
# How the file is read: workbooks, their sheets, the delimiter (issue 25).
READING = {"workbook_unreadable": 400, "sheet_required": 400, "sheet_not_found": 400,
           "wrong_delimiter": 400, "cell_outside_table": 400, "workbook_too_large": 413}
ERROR_CODES.update(READING)
# 4xx codes about the request rather than the data: fixing the command line, not the file, helps.
REQUEST_CODES = frozenset({*FORM, "not_multipart", "not_found", "method_not_allowed"}
                          - {"nul_character", "bad_request", "reserved_name", "conflicting_field",
                             "field_too_large", "too_many_files"})


def status_of(code: str) -> int:
    """The HTTP status ``code`` answers with (KeyError for a code not in the list)."""
    return ERROR_CODES[code]
