"""``GET /api/openapi.json`` and the Swagger UI page at ``/api/docs``, both public.

The Swagger UI files come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, the first line
that renders OpenAPI 3.1) and are served from here: no CDN, so the page works offline and behind
strict egress rules. Only a fixed list of files is served, by name, never a client path. The page
starts Swagger UI from a script file rather than inline code, so a strict Content-Security-Policy
(``script-src 'self'``) holds. Every answer here carries it, with ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY`` (no clickjacking of the "Try it out" forms) and ``nosniff``.
``style-src`` allows inline styles: Swagger UI's React components set ``style`` attributes, and
styles cannot run code; scripts stay this origin's files only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from .. import appkeys
from ..middleware import requires
from ..openapi.document import build_document

ASSETS_DIR = Path(swagger_ui_path)
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ingest-server API</title>
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/api/docs/init.js"></script>
</body>
</html>
"""
INIT_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""
CACHE = "public, max-age=3600"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@requires(None)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[appkeys.DOCUMENT], content_type="application/json",
                        headers=SECURITY_HEADERS)


@requires(None)
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html", headers=SECURITY_HEADERS)


@requires(None)
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    if name == "init.js":
        return web.Response(text=INIT_JS, content_type="text/javascript",
                            headers={**SECURITY_HEADERS, "Cache-Control": CACHE})
    content_type = ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.FileResponse(ASSETS_DIR / name,
                            headers={**SECURITY_HEADERS, "Content-Type": content_type,
                                     "Cache-Control": CACHE})


@functools.cache
def document_bytes() -> bytes:
    """The OpenAPI document as served: static data (OPERATIONS and the version), so built once
    per process, not for every app (a test run builds hundreds of apps)."""
    return json.dumps(build_document(), indent=1).encode()


def setup(app: web.Application) -> None:
    # Built at start-up: a broken document stops start-up, not a request.
    app[appkeys.DOCUMENT] = document_bytes()
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", docs_page)
    app.router.add_get("/api/docs/{asset}", docs_asset)
