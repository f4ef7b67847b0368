"""The application factory: ``create_app(settings)`` wires config, resources, plugins and routes.

Each resource (database, storage, ingest workers) is set up and torn down by one ``cleanup_ctx``
generator, so teardown only runs for what started. Plugins are loaded before anything starts, so a
broken plugin stops start-up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import AsyncIterator

from aiohttp import web

from ..auth import TokenService
from ..config import Settings
from ..stores.db import create_pool, embedded_dsn, migrate
from ..plugins.loading import load_registry
from ..stores.signing_key import shared_signing_key
from ..ingest.recovery import recover, recover_forever
from ..ingest.service import UploadService
from ..processing.pipeline import attach_datasets
from ..processing.setup import start_processing
from ..stores.specs import SpecStore
from ..startup import plugins_dir as configured_plugins_dir
from ..storage import make_storage
from ..stores.uploads import UploadStore
from . import appkeys, cqube
from .cqube.error_answers import cqube_errors_middleware
from .drain import drain_middleware
from .inflight import Drain
from .edge import edge_middleware
from .middleware import access_middleware, auth_middleware, echo_request_id, errors_middleware
from .views import (console, docs, health, ingestion, jsonrows, metrics, plugins, processing,
                    rawdata, resumable, specs, tokens, uploads, validate)

log = logging.getLogger("ingest_server")


def create_app(settings: Settings) -> web.Application:
    # The one place that looks at compat.profile: the cqube profile shapes errors between the
    # errors middleware and auth, and answers some routes its way (web/cqube).
    cqube_profile = settings.compat.profile == "cqube"
    shaping = [cqube_errors_middleware] if cqube_profile else []
    app = web.Application(middlewares=[drain_middleware, access_middleware, errors_middleware,
                                       *shaping, edge_middleware, auth_middleware],
                          client_max_size=1024 * 1024)
    app[appkeys.SETTINGS] = settings
    app[appkeys.DRAIN] = Drain()
    app.on_response_prepare.append(echo_request_id)
    plugins_dir = configured_plugins_dir(settings)
    # The same registry the in-process checks use: each plugin file is imported once per process.
    registry = load_registry(plugins_dir)
    app[appkeys.REGISTRY] = registry
    shared_key = not settings.auth.jwt_secret and not settings.auth.algorithm.startswith("RS")
    if not shared_key:  # a configured secret or key file wins over the database
        app[appkeys.TOKENS] = TokenService(settings.auth, base_dir=settings.path("."))
    if settings.auth.open_token_endpoint:
        log.warning("auth.open_token_endpoint is true: anyone can get a token (development only)")
    if settings.auth.open_spec_api:
        log.warning("auth.open_spec_api is true: anyone can write specs and use the validate "
                    "route without a token (as in cQube)")
    app.cleanup_ctx.append(database_ctx)
    if shared_key:
        app.cleanup_ctx.append(signing_key_ctx)
    app.cleanup_ctx.append(storage_ctx)
    if settings.processing.enabled:
        app.cleanup_ctx.append(processing_ctx)
    app.cleanup_ctx.append(ingest_ctx)
    if cqube_profile:
        cqube.setup(app)  # before the views: its handlers replace theirs, by name
    for module in (health, tokens, specs, ingestion, uploads, resumable, jsonrows, validate,
                   rawdata, plugins, metrics, docs, console, processing):
        module.setup(app)
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[appkeys.SETTINGS].database
    dsn = cfg.dsn
    if not dsn:
        data_dir = app[appkeys.SETTINGS].path(cfg.data_dir)
        log.info("database.dsn is empty: starting embedded PostgreSQL in %s", data_dir)
        dsn = await asyncio.to_thread(embedded_dsn, data_dir)
    pool = await create_pool(dsn, min_size=cfg.pool_min, max_size=cfg.pool_max,
                             timeout=cfg.connect_timeout_s, wait_s=cfg.startup_wait_s)
    try:
        await migrate(pool)
        app[appkeys.POOL] = pool
        app[appkeys.SPECS] = SpecStore(pool)
        app[appkeys.UPLOADS] = UploadStore(pool)
        yield
    finally:
        await pool.close()


async def processing_ctx(app: web.Application) -> AsyncIterator[None]:
    """processing.enabled: cQube's schemas in the processing database (processing.dsn, else
    the service's own), the grammar registry and the upload-time checks."""
    settings = app[appkeys.SETTINGS]
    cfg, db = settings.processing, settings.database
    own = bool(cfg.dsn)
    pool = (await create_pool(cfg.dsn, min_size=1, max_size=db.pool_max,
                              timeout=db.connect_timeout_s, wait_s=db.startup_wait_s)
            if own else app[appkeys.POOL])
    try:
        app[appkeys.PROCESSING] = await start_processing(
            settings, service_pool=app[appkeys.POOL], processing_pool=pool,
            specs=app[appkeys.SPECS])
        datasets = attach_datasets(app[appkeys.PROCESSING], service_pool=app[appkeys.POOL],
                                   read=app[appkeys.STORAGE].read)
        retries = asyncio.create_task(datasets.loop())  # retries, and jobs of dead instances
        yield
        retries.cancel()
        await asyncio.gather(retries, return_exceptions=True)
        await datasets.close()  # jobs still running here: their leases freed for the others
    finally:
        if own:
            await pool.close()


async def signing_key_ctx(app: web.Application) -> AsyncIterator[None]:
    """No auth.jwt_secret: every instance signs with the key kept in the database."""
    settings = app[appkeys.SETTINGS]
    secret = await shared_signing_key(app[appkeys.POOL],
                                      settings.path(settings.server.state_dir) / "jwt_secret")
    app[appkeys.TOKENS] = TokenService(settings.auth, secret=secret, base_dir=settings.path("."))
    yield


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    cfg = dataclasses.replace(settings.storage, root=str(settings.path(settings.storage.root)))
    storage = make_storage(cfg)
    await storage.start()
    app[appkeys.STORAGE] = storage
    try:
        yield
    finally:
        await storage.close()


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    service = app[appkeys.INGEST] = UploadService(
        settings=settings, specs=app[appkeys.SPECS], uploads=app[appkeys.UPLOADS],
        storage=app[appkeys.STORAGE], registry=app[appkeys.REGISTRY],
        processing=app.get(appkeys.PROCESSING))
    stale = settings.ingest.stale_upload_s
    await recover(app[appkeys.UPLOADS], app[appkeys.STORAGE], stale)
    tasks = [asyncio.create_task(recover_forever(app[appkeys.UPLOADS], app[appkeys.STORAGE], stale,
                                                 every_s=min(60.0, stale / 2),
                                                 unclean=service.unclean)),
             asyncio.create_task(service.start())]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.close(settings.server.shutdown_timeout_s)
