"""What a store holds, read from the store itself (the folder, or the S3 API), never through
the storage code under test."""

from __future__ import annotations

from typing import Any

from ingest_server.storage import LocalStorage
from ingest_server.storage.base import STAGING_DIR


async def published(storage: Any, prefix: str = "") -> list[str]:
    """The published keys starting with ``prefix``, sorted; staged data excluded."""
    if isinstance(storage, LocalStorage):
        keys = [p.relative_to(storage.root).as_posix() for p in storage.root.rglob("*")
                if p.is_file()]
    else:
        keys = []
        paginator = storage.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=storage.bucket, Prefix=storage.prefix):
            keys += [item["Key"][len(storage.prefix):] for item in page.get("Contents", [])]
    return sorted(k for k in keys if k.startswith(prefix) and
                  not k.startswith(STAGING_DIR + "/"))


async def exists(storage: Any, key: str) -> bool:
    return key in await published(storage)
