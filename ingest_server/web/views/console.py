"""The web console at ``/``: plain HTML, CSS and ES modules from ``ingest_server/web/console/``.

No build step: the files are committed as they are served (the one third-party file,
``tus.min.js``, is tus-js-client's own built bundle from npm, with its licence beside it). They are
read once at start-up into a fixed table, so a request can only name a file in it, never a
path. Each answer carries a strong ETag (``no-cache``: the browser revalidates and gets 304 while
the file is unchanged) and a strict Content-Security-Policy: only this origin's scripts, styles
and connections, no inline code, no framing. The console talks to the public API with a bearer
token like any client; it has no back door.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from .. import appkeys
from ..middleware import requires

RESUMABLE_PATH = "/api/ingestion/resumable"  # tus, when this server has it (DESIGN.md §11)
CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                    "Cache-Control": "no-cache"}


class Asset:
    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.content_type = TYPES[path.suffix]
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


ASSETS = appkeys.CONSOLE_ASSETS


def load_assets(directory: Path = CONSOLE_DIR) -> dict[str, Asset]:
    return {p.name: Asset(p) for p in sorted(directory.iterdir())
            if p.is_file() and p.suffix in TYPES}


def _answer(request: web.Request, asset: Asset) -> web.Response:
    headers = dict(SECURITY_HEADERS, ETag=asset.etag)
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.body, headers=headers)


@requires(None)
async def console_page(request: web.Request) -> web.Response:
    return _answer(request, request.app[ASSETS]["index.html"])


@requires(None)
async def console_settings(request: web.Request) -> web.Response:
    """What the console needs to know before signing in, without probing endpoints (a probe's
    401 or 405 would be an error in the browser's console): whether the token endpoint is open
    and whether resumable (tus) uploads are served."""
    paths = {getattr(r, "canonical", None) for r in request.app.router.resources()}
    body = {"open_token_endpoint": request.app[appkeys.SETTINGS].auth.open_token_endpoint,
            "resumable": RESUMABLE_PATH in paths,
            "processing": request.app[appkeys.SETTINGS].processing.enabled}
    return web.json_response(body, headers=dict(SECURITY_HEADERS))


@requires(None)
async def console_asset(request: web.Request) -> web.Response:
    asset = request.app[ASSETS].get(request.match_info["asset"])
    if asset is None:
        raise web.HTTPNotFound()
    return _answer(request, asset)


def setup(app: web.Application) -> None:
    app[ASSETS] = load_assets()
    app.router.add_get("/", console_page)
    app.router.add_get("/console/settings.json", console_settings)
    app.router.add_get("/console/{asset}", console_asset)
