"""What an Idempotency-Key and a same-bytes duplicate must match before an earlier result is used.

An Idempotency-Key covers one request: its route, target (type, name, programme), options and
file bytes. The same key with anything else is a client mistake, answered 422
``idempotency_key_reused`` rather than with the first result (the new data would silently never
be written). The first answer is replayed with its own HTTP status: a 400 refusal replays as
400. Dry runs neither claim nor look up keys. An upload refused before its whole file was read
matched the key on the bytes it read (its outcome depended on nothing else).

A same-bytes duplicate (answered with the earlier upload's objects) must also have been checked
against the same spec version(s) and with the same ``encoding``: otherwise the earlier objects
would not be what this upload would have written. And it must come from the same client:
another client's identical file lands as its own (it learns nothing of the earlier upload, and
the earlier client's retraction does not take its data away).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable

from ..errors import Conflict, IdempotencyKeyReused, IngestError
from .responses import response_body

if TYPE_CHECKING:
    from ..stores.uploads import UploadStore
    from .model import UploadRequest


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def _encoding(req: UploadRequest) -> str | None:
    return req.encoding.strip().lower().replace("_", "-") if req.encoding else None


def _reading(req: UploadRequest) -> dict[str, str]:
    """How the file is read beyond its encoding (absent when not given: older keys stay)."""
    return {k: v for k, v in (("sheet", req.sheet), ("delimiter", req.delimiter)) if v}


def request_fingerprint(req: UploadRequest) -> str:
    """Everything an Idempotency-Key covers except the file bytes (compared separately)."""
    return _digest({"route": req.program_type.route, "type": req.program_type.name,
                    "name": req.ingestion_name, "program": req.program,
                    "max_error_rate": req.max_error_rate, "encoding": _encoding(req),
                    **_reading(req)})


def dedup_key(req: UploadRequest, sha256: str, spec_versions: Iterable[tuple[str, int | None]]
              ) -> str:
    """What two uploads must share for the second to be answered with the first's objects."""
    return _digest({"sha256": sha256, "client": req.client, "route": req.program_type.route,
                    "type": req.program_type.name, "name": req.ingestion_name,
                    "program": req.program, "encoding": _encoding(req), **_reading(req),
                    "specs": sorted([name, version] for name, version in spec_versions)})


async def _same_bytes(earlier: dict[str, Any], source: AsyncIterator[bytes]) -> bool:
    """Whether ``source`` holds the bytes the earlier upload read (all of them, when it read
    its whole file; else the same first ``bytes``)."""
    want = earlier.get("read_sha256") or earlier.get("sha256")
    if want is None:
        return True  # recorded before fingerprints existed: nothing to compare with
    complete = earlier.get("read_complete") or earlier.get("read_sha256") is None
    limit, n, h = earlier["bytes"], 0, hashlib.sha256()
    async for piece in source:
        if not complete and n + len(piece) >= limit:
            h.update(piece[:limit - n])
            return h.hexdigest() == want
        n += len(piece)
        if complete and n > limit:
            return False
        h.update(piece)
    return n == limit and h.hexdigest() == want


async def replay(uploads: UploadStore, req: UploadRequest,
                 source: AsyncIterator[bytes]) -> dict[str, Any] | None:
    """The earlier answer for this request's Idempotency-Key (raised again when it was an error),
    or None when the key is new. 422 when the key was used for another request."""
    if not req.idempotency_key or req.dry_run:
        return None
    earlier = await uploads.by_idempotency_key(req.client, req.idempotency_key)
    if earlier is None:
        return None
    reused = IdempotencyKeyReused(
        "this Idempotency-Key was used for another request (route, target, options or file); "
        "use a new key for a new upload", upload_id=earlier["id"])
    fingerprint = earlier.get("request_fingerprint")
    if fingerprint is not None and fingerprint != request_fingerprint(req):
        raise reused
    if earlier["status"] == "receiving":
        raise Conflict("an upload with this Idempotency-Key is still in progress",
                       code="upload_in_progress", upload_id=earlier["id"])
    if not await _same_bytes(earlier, source):
        raise reused
    status = earlier.get("http_status") or 200
    error = earlier.get("error") or {}
    if status >= 400:
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        raise IngestError(error.get("message", "refused"), code=error.get("code"), status=status,
                          **dict(details, upload_id=earlier["id"], idempotent_replay=True))
    return dict(response_body(earlier), idempotent_replay=True)
