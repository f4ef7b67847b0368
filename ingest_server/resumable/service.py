"""A tus upload from creation to its outcome: validated options, leased PATCHes, completion.

Domain code (no aiohttp). A complete upload is handed to the upload path — the same
:class:`UploadService` methods the one-shot routes call, fed from the staged bytes — so it lands
with the same keys, the same ``uploads`` record and the same answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

from ..aio import in_background
from ..config import QuotasConfig, Settings
from ..errors import (BadRequest, ChecksumMismatch, Conflict, DatabaseError, Gone, IngestError,
                      InsufficientStorage, Locked, NotFound, RateLimited, UploadTooLarge)
from ..ingest.model import UploadRequest
from ..ingest.service import UploadService
from ..ingest.spool import spool
from .staging import Staging
from ..stores.resumable import Held, ResumableStore

log = logging.getLogger("ingest_server.resumable")
LEASE_S = 30.0  # a PATCH holds its upload this long, refreshed every third of it while it works
CHECKSUMS = ("sha256", "sha1", "md5")


def parse_checksum(value: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    if value is None:
        return None
    algorithm, _, digest = value.strip().partition(" ")
    if algorithm.lower() not in CHECKSUMS:
        raise BadRequest(f"checksum algorithm '{algorithm}' is not supported "
                         f"(one of {', '.join(CHECKSUMS)})", code="unsupported_checksum_algorithm",
                         supported=list(CHECKSUMS))
    try:
        return algorithm.lower(), base64.b64decode(digest.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Upload-Checksum is not '<algorithm> <base64 digest>'",
                         code="invalid_checksum") from None


def request_to_json(req: UploadRequest) -> dict[str, Any]:
    out = dataclasses.asdict(dataclasses.replace(req, idempotency_key=None))
    out["program_type"] = req.program_type.name
    return out


def request_from_json(data: dict[str, Any], service: UploadService) -> UploadRequest:
    pt = service.program_type(data["program_type"])
    if pt is None:
        raise BadRequest(f"ingestion_type '{data['program_type']}' is no longer served",
                         code="unknown_ingestion_type")
    return UploadRequest(**dict(data, program_type=pt))


class Received:
    """The body of one PATCH, counted and hashed. Whatever stops it early (the client going
    away, a stall) ends the iteration and is kept in ``error``: the bytes before it still count."""

    def __init__(self, source: AsyncIterator[bytes], limit: int, algorithm: str | None) -> None:
        self.source, self.limit = source, limit
        self.hasher = hashlib.new(algorithm) if algorithm else None
        self.nbytes = 0
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self.source:
                if self.nbytes + len(piece) > self.limit:
                    raise UploadTooLarge("the PATCH body goes past Upload-Length",
                                         code="upload_length_exceeded", limit=self.limit)
                self.nbytes += len(piece)
                if self.hasher is not None:
                    self.hasher.update(piece)
                yield piece
        except Exception as e:  # noqa: BLE001 - kept and raised by the caller once staged
            self.error = e


def check_quota(quotas: QuotasConfig, held: Held, length: int, free: int | None) -> None:
    """Refuse a new upload that would pass the client's quotas (``[quotas]``) or, on a disk,
    whose bytes and those every open upload still has to send would not fit in its free space."""
    limit = quotas.resumable_open_per_client
    if limit and held.open >= limit:
        raise RateLimited(f"this client already has {held.open} unfinished resumable uploads "
                          f"(the limit is {limit}): finish or terminate one first",
                          code="too_many_open_uploads", limit=limit)
    limit = quotas.resumable_bytes_per_client
    if limit and held.declared + length > limit:
        raise UploadTooLarge(f"this client's unfinished resumable uploads would declare more than "
                             f"{limit} bytes: finish or terminate one first",
                             code="upload_quota_exceeded", limit=limit, declared=held.declared,
                             requested=length)
    if free is not None and held.outstanding + length > free:
        raise InsufficientStorage("not enough free space to stage this upload with those "
                                  "already under way", free_bytes=free,
                                  outstanding=held.outstanding, requested=length)


class ResumableService:
    def __init__(self, *, settings: Settings, ingest: UploadService, store: ResumableStore,
                 staging: Staging, spool_dir: Path) -> None:
        self.settings = settings
        self.ingest = ingest
        self.store = store
        self.staging = staging
        self.spool_dir = spool_dir

    async def create(self, req: UploadRequest, *, length: int, metadata: str) -> dict[str, Any]:
        limit = self.settings.limits.max_upload_bytes
        if length > limit:
            raise UploadTooLarge(f"the upload is larger than {limit} bytes", max_upload_bytes=limit)
        # Every option is checked now, not when the last byte is in: the form's shape was checked
        # by the view; the encoding and the spec by the upload path.
        await self.ingest.admit(req)
        free = await self.staging.free_bytes()

        async def admit(held: Held) -> None:
            check_quota(self.settings.quotas, held, length, free)

        return await self.store.create(tus_id=uuid.uuid4().hex, client=req.client, length=length,
                                       request=request_to_json(req), metadata=metadata,
                                       expire_s=self.settings.ingest.resumable_expire_s,
                                       admit=admit)

    async def status(self, tus_id: str, client: str | None) -> dict[str, Any]:
        """The upload, or 404 (none, or another client's) / 410 (terminated or expired)."""
        row = await self.store.get(tus_id, client)
        if row is None:
            raise NotFound("no such resumable upload", code="upload_not_found")
        if row["status"] == "terminated":
            raise Gone("this upload was terminated", code="upload_terminated")
        if row["expired"] and row["status"] != "done":
            raise Gone("this upload expired before it was complete", code="upload_expired")
        return row

    async def patch(self, tus_id: str, client: str | None, *, offset: int,
                    body: AsyncIterator[bytes], content_length: int | None,
                    checksum: tuple[str, bytes] | None) -> tuple[dict[str, Any], dict | None]:
        """Append one PATCH body; returns the row and, when this completed the upload, the
        one-shot answer of its ``uploads`` record."""
        await self.status(tus_id, client)
        async with self._leased(tus_id, client) as (row, token):
            if offset != row["upload_offset"]:
                raise Conflict(f"Upload-Offset is {offset}, the upload is at "
                               f"{row['upload_offset']}", code="offset_mismatch",
                               upload_offset=row["upload_offset"])
            if row["status"] == "done":
                return row, None
            remaining = row["length"] - offset
            if content_length is not None and content_length > remaining:
                raise UploadTooLarge("the PATCH body goes past Upload-Length",
                                     code="upload_length_exceeded", limit=remaining)
            received = Received(body, remaining, checksum[0] if checksum else None)
            written = await self.staging.append(tus_id, offset, received.chunks())
            accepted = not (isinstance(received.error, UploadTooLarge)
                            or (checksum and received.error is not None))
            if accepted and checksum and received.hasher.digest() != checksum[1]:
                await self.staging.discard_after(tus_id, offset)
                raise ChecksumMismatch("the body does not match Upload-Checksum; nothing of it "
                                       "was kept", algorithm=checksum[0])
            if not accepted:
                await self.staging.discard_after(tus_id, offset)
            else:
                await self.store.set_offset(tus_id, token, offset + written)
                row["upload_offset"] = offset + written
            if received.error is not None:
                raise received.error
            if row["upload_offset"] < row["length"]:
                return row, None
            return row, await self._complete(row, token)

    async def terminate(self, tus_id: str, client: str | None) -> None:
        await self.status(tus_id, client)
        async with self._leased(tus_id, client) as (_, token):
            await self.store.terminate(tus_id, token)
            await self.staging.delete(tus_id)

    async def expire(self) -> list[str]:
        """Remove expired uploads (unfinished: their staged bytes too). Run at start-up and every
        minute by the resumable view's background task (``web/views/resumable.py``)."""
        gone = []
        for row in await self.store.expired():
            await self.staging.delete(row["id"])
            await self.store.delete_expired(row["id"])
            if row["status"] == "receiving":
                log.info("resumable upload %s expired unfinished: removed", row["id"])
            gone.append(row["id"])
        return gone

    # -- internals ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _leased(self, tus_id: str, client: str | None):
        token = uuid.uuid4().hex
        row = await self.store.lease(tus_id, client, token, LEASE_S)
        if row is None:
            if await self.store.get(tus_id, client) is None:
                raise NotFound("no such resumable upload", code="upload_not_found")
            raise Locked("another request is writing to this upload; retry shortly")

        async def keep() -> None:
            while True:
                await asyncio.sleep(LEASE_S / 3)
                try:
                    await self.store.refresh(tus_id, token, LEASE_S)
                except DatabaseError as e:
                    log.warning("resumable upload %s: lease renewal failed: %s", tus_id, e)

        try:
            async with in_background(keep()):
                yield row, token
        finally:
            await self.store.release(tus_id, token)

    async def _complete(self, row: dict[str, Any], token: str) -> dict[str, Any]:
        """Hand the staged bytes to the upload path, exactly as a one-shot upload.
        A rejected file is final (recorded, staged bytes removed); a server-side failure leaves
        the upload complete and staged, so an empty PATCH at its end tries again."""
        tus_id, length = row["id"], row["length"]
        req = request_from_json(row["request"], self.ingest)
        try:
            if req.program_type.archive:
                answer = await self._complete_zip(req, tus_id, length)
            else:
                answer = await self.ingest.ingest_csv(req, self.staging.read(tus_id, length),
                                                      expected_bytes=length)
        except IngestError as e:
            upload_id = e.details.get("upload_id")
            if upload_id and e.status < 500:
                await self.store.done(tus_id, token, upload_id, "rejected")
                await self.staging.delete(tus_id)
            raise
        await self.store.done(tus_id, token, answer["upload_id"], answer["status"])
        row.update(status="done", upload_id=answer["upload_id"], upload_status=answer["status"])
        await self.staging.delete(tus_id)
        return answer

    async def _complete_zip(self, req: UploadRequest, tus_id: str, length: int) -> dict:
        path = self.staging.local_path(tus_id)
        if path is not None:
            return await self.ingest.ingest_zip(req, path, length)  # hashed from the file
        # A ZIP is read from its central directory: an S3-staged one is spooled first (and
        # hashed while spooled), as a one-shot national upload is.
        spooled = await spool(self.staging.read(tus_id, length), self.spool_dir)
        try:
            return await self.ingest.ingest_zip(req, spooled.path, spooled.size, spooled.sha256)
        finally:
            spooled.path.unlink(missing_ok=True)
