"""Object storage: local folders (default) or any S3-compatible store, behind one contract.

Every object is written through a writer that keeps it invisible until committed, and an
upload's objects are published together with :func:`publish_all` (all or nothing).
"""

from __future__ import annotations

from typing import Any

from ingest_server.errors import ConfigError
from ingest_server.storage.base import (ObjectWriter, Storage, abort_all, publish_all,
                                        validate_key)
from ingest_server.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectWriter", "S3Storage", "Storage", "abort_all", "make_storage",
           "publish_all", "validate_key"]


def __getattr__(name: str) -> Any:
    # S3Storage is imported on first use: aiobotocore/botocore cost ~15 MB of RSS in every
    # server process, which a server on the local backend never needs.
    if name == "S3Storage":
        from ingest_server.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_storage(cfg: Any) -> Storage:
    """Build the configured backend (not started). ``cfg`` is the ``[storage]`` section;
    empty strings mean "not set" (S3 then falls back to botocore's usual lookup)."""
    if cfg.backend == "local":
        if not cfg.root:
            raise ConfigError("storage.root must be set for the local backend")
        return LocalStorage(cfg.root)
    if cfg.backend == "s3":
        if not cfg.bucket:
            raise ConfigError("storage.bucket must be set for the s3 backend")
        from ingest_server.storage.s3 import S3Storage

        return S3Storage(cfg.bucket, endpoint_url=cfg.endpoint_url, region=cfg.region,
                         access_key_id=cfg.access_key_id,
                         secret_access_key=cfg.secret_access_key,
                         prefix=getattr(cfg, "prefix", ""))
    raise ConfigError(f"storage.backend must be 'local' or 's3', not {cfg.backend!r}")
