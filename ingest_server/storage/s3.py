"""Objects in an S3-compatible bucket (AWS, MinIO, SeaweedFS) through aiobotocore.

A writer buffers one part (8 MiB by default) and uploads it as part of a multipart upload that
is created lazily, so an object smaller than one part is a single PutObject and never leaves a
multipart upload behind. Nothing is visible under the key until CompleteMultipartUpload (or the
PutObject), which is what makes S3 objects atomic. Memory per writer is bounded by one part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ingest_server.errors import IngestError, InvalidStorageArgument, NotFound, StorageError
from ingest_server.storage.base import (DEFAULT_CHUNK_SIZE, STAGING_DIR, validate_key,
                                        validate_prefix, validate_upload_id)

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_S3_ERRORS = (BotoCoreError, ClientError, OSError, asyncio.TimeoutError)
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def _map_error(exc: BaseException, action: str, key: str | None = None) -> IngestError:
    """Turn a botocore/transport failure into a domain error (never a raw exception)."""
    details: dict[str, Any] = {"action": action}
    if key is not None:
        details["key"] = key
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        details["s3_code"] = code
        if code in _MISSING_CODES and key is not None:
            return NotFound(f"no object {key}", code="object_not_found", **details)
        unavailable = (code in _UNAVAILABLE_CODES
                       or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500)
        return StorageError(f"S3 {action} failed: {code or exc}",
                            code="storage_unavailable" if unavailable else "storage_error",
                            **details)
    if isinstance(exc, BotoConnectionError | HTTPClientError | OSError | asyncio.TimeoutError):
        return StorageError(f"S3 unreachable during {action}: {exc}", code="storage_unavailable",
                            **details)
    return StorageError(f"S3 {action} failed: {exc}", code="storage_error", **details)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))



_SESSION: AioSession | None = None


def _session() -> AioSession:
    """One botocore session per process: it loads the S3 service model once (about 60 ms a
    client otherwise); each storage still gets its own client and connection pool."""
    global _SESSION  # noqa: PLW0603
    if _SESSION is None:
        _SESSION = get_session()
    return _SESSION

class S3Writer:
    """Streams one object to S3 in parts; the object appears only on commit."""

    def __init__(self, storage: S3Storage, key: str, part_size: int) -> None:
        self.key = key
        self.bytes_written = 0
        self._storage = storage
        self._full_key = storage.full_key(key)
        self._part_size = part_size
        self._buffer = bytearray()
        self._multipart_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._state = "open"

    async def write(self, data: bytes) -> None:
        if self._state != "open":
            raise StorageError(f"writer for {self.key} is {self._state}", code="writer_closed",
                               key=self.key)
        self._buffer += data
        self.bytes_written += len(data)
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[:self._part_size])
            del self._buffer[:self._part_size]
            await self._upload_part(part)

    async def _upload_part(self, body: bytes) -> None:
        client, bucket = self._storage.client, self._storage.bucket
        try:
            if self._multipart_id is None:
                created = await client.create_multipart_upload(
                    Bucket=bucket, Key=self._full_key,
                    ContentType=self._storage.content_type(self.key))
                self._multipart_id = created["UploadId"]
            number = len(self._parts) + 1
            uploaded = await client.upload_part(Bucket=bucket, Key=self._full_key,
                                                UploadId=self._multipart_id,
                                                PartNumber=number, Body=body)
        except _S3_ERRORS as exc:
            raise _map_error(exc, "upload_part", self.key) from exc
        self._parts.append({"PartNumber": number, "ETag": uploaded["ETag"]})

    async def commit(self) -> None:
        if self._state == "committed":
            return
        if self._state != "open":
            raise StorageError(f"writer for {self.key} is {self._state}", code="writer_aborted",
                               key=self.key)
        client, bucket = self._storage.client, self._storage.bucket
        # A failure below leaves the writer open, so abort() can still remove the parts.
        if self._multipart_id is None:
            try:
                await client.put_object(Bucket=bucket, Key=self._full_key,
                                        Body=bytes(self._buffer),
                                        ContentType=self._storage.content_type(self.key))
            except _S3_ERRORS as exc:
                raise _map_error(exc, "put_object", self.key) from exc
        else:
            if self._buffer:
                last, self._buffer = bytes(self._buffer), bytearray()
                await self._upload_part(last)
            try:
                await client.complete_multipart_upload(
                    Bucket=bucket, Key=self._full_key, UploadId=self._multipart_id,
                    MultipartUpload={"Parts": self._parts})
            except _S3_ERRORS as exc:
                raise _map_error(exc, "complete_multipart_upload", self.key) from exc
        self._state = "committed"
        self._buffer = bytearray()

    async def abort(self) -> None:
        if self._state != "open":
            return
        self._buffer = bytearray()
        if self._multipart_id is not None:
            try:
                await self._storage.client.abort_multipart_upload(
                    Bucket=self._storage.bucket, Key=self._full_key, UploadId=self._multipart_id)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":
                    raise _map_error(exc, "abort_multipart_upload", self.key) from exc
            except _S3_ERRORS as exc:
                # Stay open: a later abort() or cleanup_staged() can still remove the parts.
                raise _map_error(exc, "abort_multipart_upload", self.key) from exc
        self._state = "aborted"

    async def revert(self) -> None:
        if self._state == "committed":
            await self._storage.delete(self.key)


class S3Storage:
    """One bucket (optionally a ``prefix`` inside it, ending in '/'), one aiobotocore client.

    ``cleanup_staged(upload_id=...)`` finds the multipart uploads of an upload by its id inside
    the object key: the service's key templates always contain the upload id, so keys must too.
    """

    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, prefix: str = "",
                 part_size: int = DEFAULT_PART_SIZE, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 60.0, max_attempts: int = 3) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} bytes (S3 minimum)")
        if prefix and not prefix.endswith("/"):
            raise ValueError("prefix must be empty or end with '/'")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix)
        self.part_size = part_size
        self._endpoint_url = endpoint_url or None
        self._region = region or None
        self._access_key_id = access_key_id or None
        self._secret_access_key = secret_access_key or None
        self._config = AioConfig(
            connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path"},  # SeaweedFS and MinIO need path-style URLs
            # Checksums only where S3 requires them: third-party stores lag on the newer ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise StorageError("S3 storage is not started", code="storage_unavailable")
        return self._client

    def full_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    @staticmethod
    def content_type(key: str) -> str:
        return mimetypes.guess_type(key)[0] or "application/octet-stream"

    async def start(self) -> None:
        if self._client is not None:
            return
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(_session().create_client(
            "s3", endpoint_url=self._endpoint_url, region_name=self._region,
            aws_access_key_id=self._access_key_id,
            aws_secret_access_key=self._secret_access_key, config=self._config))
        self._stack = stack
        try:
            await self._ensure_bucket()
        except BaseException:
            await self.close()
            raise

    async def _ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise _map_error(exc, "head_bucket") from exc
        except _S3_ERRORS as exc:
            raise _map_error(exc, "head_bucket") from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self._region and self._region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            await self._client.create_bucket(**kwargs)
        except ClientError as exc:
            # Another worker may have created it between our check and our create.
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _map_error(exc, "create_bucket") from exc
        except _S3_ERRORS as exc:
            raise _map_error(exc, "create_bucket") from exc

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def open_writer(self, key: str, *, upload_id: str) -> S3Writer:
        validate_upload_id(upload_id)
        validate_key(key)
        if upload_id not in key:
            log.warning("key %s does not contain upload id %s: cleanup_staged(upload_id=...) "
                        "will not find its multipart upload", key, upload_id)
        return S3Writer(self, key, self.part_size)

    async def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        full = self.full_key(key)
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=full)
        except _S3_ERRORS as exc:
            raise _map_error(exc, "get_object", key) from exc
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await body.read(chunk_size)
                except _S3_ERRORS as exc:
                    raise _map_error(exc, "get_object", key) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        try:
            await self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except _S3_ERRORS as exc:
            raise _map_error(exc, "delete_object", key) from exc

    async def cleanup_staged(self, upload_id: str | None = None,
                             older_than_s: float | None = None) -> int:
        """Abort multipart uploads left by a crash: those whose key contains ``upload_id``,
        and/or those initiated more than ``older_than_s`` ago.

        Age counts from the upload's start, so ``older_than_s`` must exceed the longest upload
        allowed. With neither argument every multipart upload under the prefix goes: only safe
        when nothing else is writing.
        """
        if upload_id is not None:
            validate_upload_id(upload_id)
        if older_than_s is not None and older_than_s < 0:
            raise InvalidStorageArgument("older_than_s must be >= 0", code="invalid_argument")
        cutoff = (None if older_than_s is None
                  else datetime.now(timezone.utc) - timedelta(seconds=older_than_s))
        stale = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    if upload_id is not None and upload_id not in upload["Key"][len(self.prefix):]:
                        continue
                    if cutoff is not None and upload["Initiated"] > cutoff:
                        continue
                    stale.append(upload)
        except _S3_ERRORS as exc:
            raise _map_error(exc, "list_multipart_uploads") from exc
        removed = 0
        for upload in stale:
            try:
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            except ClientError as exc:
                if _error_code(exc) == "NoSuchUpload":
                    continue  # completed or aborted by its writer meanwhile
                raise _map_error(exc, "abort_multipart_upload", upload["Key"]) from exc
            except _S3_ERRORS as exc:
                raise _map_error(exc, "abort_multipart_upload", upload["Key"]) from exc
            removed += 1
        return removed

    async def presigned_url(self, key: str, expires_s: int) -> str | None:
        return await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.full_key(key)},
            ExpiresIn=expires_s)

    async def check(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except _S3_ERRORS as exc:
            raise _map_error(exc, "head_bucket") from exc
