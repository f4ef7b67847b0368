"""Download links for the latest emission files of a programme (cQube's ``getRawData``).

A state instance asks the national one for the files a national programme landed today. The
files are found from the upload records (:mod:`ingest_server.stores.rawdata`), so only published
objects of uploads that are still ``uploaded`` are offered. On S3 the links are
presigned GET URLs; on local storage they point at our own ``GET /api/ingestion/raw``, signed
with an HMAC of the key and the expiry time, and refused once expired.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from .errors import Forbidden

URL_TTL_S = 3600


def _mac(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode("utf-8"), hashlib.sha256).hexdigest()


def sign(secret: bytes, key: str, ttl_s: int = URL_TTL_S,
         now: float | None = None) -> dict[str, Any]:
    """The query of a signed link to ``key``, valid for ``ttl_s`` seconds."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return {"key": key, "expires": str(expires), "signature": _mac(secret, key, expires)}


def verify(secret: bytes, key: str, expires: str, signature: str,
           now: float | None = None) -> None:
    """Raise Forbidden unless the link was signed by us for ``key`` and has not expired."""
    try:
        when = int(expires)
    except ValueError:
        raise Forbidden("the link is invalid", code="invalid_signature") from None
    if not hmac.compare_digest(_mac(secret, key, when), signature):
        raise Forbidden("the link is invalid", code="invalid_signature")
    if when < (time.time() if now is None else now):
        raise Forbidden("the link has expired", code="link_expired", expired_at=when)
