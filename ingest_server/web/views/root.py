"""``GET /``: a browser that opens the server's address is sent to the API docs page.

A plain 302 (not 301: browsers cache a permanent redirect, and ``/`` will become the web console).
"""

from aiohttp import web

from ..middleware import requires

DOCS_PAGE = "/api/docs"


@requires(None)
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound(DOCS_PAGE)


def setup(app: web.Application) -> None:
    app.router.add_get("/", root)
