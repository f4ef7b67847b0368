"""Liveness and readiness."""

from aiohttp import web

from ...version import __version__, schema_version
from ...stores.db import ping
from ...errors import IngestError
from .. import appkeys
from ..middleware import requires


@requires(None)
async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving; says nothing about its dependencies. ``version`` is this
    release, ``schema_version`` the newest migration it ships (applied before it served)."""
    return web.json_response({"status": "ok", "version": __version__,
                              "schema_version": schema_version()})


@requires(None)
async def readyz(request: web.Request) -> web.Response:
    """Ready when the database and the storage both answer, and not shutting down."""
    checks = {}
    for name, probe in (("database", lambda: ping(request.app[appkeys.POOL])),
                        ("storage", lambda: request.app[appkeys.STORAGE].check())):
        try:
            await probe()
            checks[name] = "ok"
        except IngestError as e:
            checks[name] = e.code
    ready = all(v == "ok" for v in checks.values())
    status = "ready" if ready else "not_ready"
    if request.app[appkeys.DRAIN].draining:  # shutting down: a load balancer must stop sending here
        ready, status = False, "draining"
    return web.json_response({"status": status, "checks": checks},
                             status=200 if ready else 503)


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
