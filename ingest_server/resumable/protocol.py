"""Header values of the tus protocol: parsing and formatting, nothing else."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from email.utils import format_datetime

from ..errors import BadRequest, PreconditionFailed

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
MEDIA_TYPE = "application/offset+octet-stream"


def check_version(value: str | None) -> None:
    if value != TUS_VERSION:
        raise PreconditionFailed(f"Tus-Resumable must be {TUS_VERSION}", supported=[TUS_VERSION])


def parse_length(value: str | None, header: str) -> int:
    """A non-negative integer header (``Upload-Length``, ``Upload-Offset``)."""
    if value is None:
        raise BadRequest(f"{header} is required", code="missing_header", header=header)
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise BadRequest(f"{header} must be a non-negative integer", code="invalid_header",
                         header=header)
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key base64,...`` (a key may come without a value)."""
    out: dict[str, str] = {}
    for pair in (value or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        if not key.isascii() or not key.isprintable() or " " in encoded.strip() or key in out:
            raise BadRequest("Upload-Metadata must be 'key base64value' pairs with distinct "
                             "keys, separated by commas", code="invalid_metadata")
        try:
            out[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata value of '{key}' is not base64 of UTF-8 text",
                             code="invalid_metadata", key=key) from None
    return out


def http_date(moment: datetime) -> str:
    """RFC 9110 date, as ``Upload-Expires`` wants."""
    return format_datetime(moment, usegmt=True)
