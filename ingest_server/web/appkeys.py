"""Typed keys for everything the app holds; one place so views and tests agree on names."""

from __future__ import annotations

from aiohttp import web

from ..auth import TokenService
from ..config import Settings
from ..stores.db import Pool
from ..ingest.service import UploadService
from ..plugins.loading import Registry
from ..processing.service import ProcessingService
from ..resumable.service import ResumableService
from ..stores.specs import SpecStore
from ..storage.base import Storage
from ..stores.uploads import UploadStore
from .inflight import Drain

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", Pool)
SPECS = web.AppKey("specs", SpecStore)
UPLOADS = web.AppKey("uploads", UploadStore)
STORAGE = web.AppKey("storage", Storage)
TOKENS = web.AppKey("tokens", TokenService)
REGISTRY = web.AppKey("registry", Registry)
INGEST = web.AppKey("ingest", UploadService)
RESUMABLE = web.AppKey("resumable", ResumableService)
DRAIN = web.AppKey("drain", Drain)
PROCESSING = web.AppKey("processing", ProcessingService)  # only with processing.enabled
DOCUMENT = web.AppKey("openapi_document", bytes)  # the OpenAPI document, built once
CONSOLE_ASSETS = web.AppKey("console_assets", dict)  # the console's files, read once
# The compat profile's handlers, by the name of the native handler they answer for (web/cqube).
PROFILE_HANDLERS = web.AppKey("profile_handlers", dict)
