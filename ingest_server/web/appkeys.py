"""Typed keys for everything the app holds; one place so views and tests agree on names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..db import Pool

if TYPE_CHECKING:
    from ..auth import TokenService
    from ..config import Settings
    from ..plugins import Registry
    from ..specs import SpecStore
    from ..storage.base import Storage
    from ..uploads import UploadStore
    from ..ingest.service import IngestService

SETTINGS = web.AppKey("settings", "Settings")
POOL = web.AppKey("pool", Pool)
SPECS = web.AppKey("specs", "SpecStore")
UPLOADS = web.AppKey("uploads", "UploadStore")
STORAGE = web.AppKey("storage", "Storage")
TOKENS = web.AppKey("tokens", "TokenService")
REGISTRY = web.AppKey("registry", "Registry")
INGEST = web.AppKey("ingest", "IngestService")
