"""``GET /api/ingestion/generatejwt``: client credentials (HTTP Basic) in, a bearer token out."""

from aiohttp import web

from ...auth import parse_basic
from ...errors import Unauthorized
from .. import appkeys
from ..middleware import requires


@requires(None)
async def generate_jwt(request: web.Request) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    tokens = request.app[appkeys.TOKENS]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        client = tokens.authenticate_client(*parse_basic(header))
        return web.json_response(tokens.issue(client.id, client.scopes))
    if settings.auth.open_token_endpoint:
        return web.json_response(tokens.issue("anonymous", ("ingest", "spec", "read")))
    raise Unauthorized("client credentials are required (HTTP Basic auth)", code="missing_credentials")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ingestion/generatejwt", generate_jwt)
