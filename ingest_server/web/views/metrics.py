"""``GET /metrics``: the Prometheus text format, public like the health checks.

Public because scrapers do not carry our bearer tokens; it holds counts and label values that are
program type and spec names, no data. Keep it off the public network (bind a private port or
filter at the proxy) where those names are confidential. Per-process: see ``ingest_server.metrics``.
"""

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ... import metrics
from ..middleware import requires


@requires(None)
async def get_metrics(request: web.Request) -> web.Response:
    resp = web.Response(body=metrics.render())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", get_metrics)
