"""The protocol's own answers (410, 412, 423, 460), as domain errors with a stable code."""

from __future__ import annotations

from ..errors import IngestError


class Gone(IngestError):
    status, code = 410, "upload_gone"


class PreconditionFailed(IngestError):
    status, code = 412, "unsupported_tus_version"


class Locked(IngestError):
    status, code = 423, "upload_locked"


class ChecksumMismatch(IngestError):
    status, code = 460, "checksum_mismatch"
