"""Domain errors. Each carries an HTTP ``status`` and a stable ``code``.

One middleware (``ingest_server.web.middleware``) turns any of them into the JSON error shape
``{"error": {"code", "message", "details"}}``. Domain code raises these and never imports aiohttp.
"""

from __future__ import annotations

from typing import Any

from .bounded import bounded, clip


class IngestError(Exception):
    """Base of every error a client may see. Subclasses set ``status`` and ``code``."""

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


class DatabaseError(IngestError):
    """The database failed a request for a reason of its own (a store turns the driver's errors
    into this, so nothing above the stores knows the driver)."""

    status, code = 500, "internal_error"


class DatabaseUnavailable(DatabaseError):
    status, code = 503, "db_unavailable"
