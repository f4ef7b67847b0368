"""``GET /api/ingestion/generatejwt``: client credentials (HTTP Basic) in, a bearer token out.

Failed Basic attempts are counted per client id and per remote address, in PostgreSQL so every
instance shares the counts (``login_limits.py``): past ``auth.max_failed_attempts`` within
``auth.failed_attempts_window_s`` the endpoint answers 429 ``rate_limited`` with ``Retry-After``,
before the credentials are even checked.
"""

from aiohttp import web

from ...auth import parse_basic
from ...errors import Unauthorized
from ...login_limits import SharedFailureLimiter
from .. import appkeys
from ..forwarded import client_address
from ..middleware import requires


@requires(None)
async def generate_jwt(request: web.Request) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    tokens = request.app[appkeys.TOKENS]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        cfg = settings.auth
        limiter = SharedFailureLimiter(request.app[appkeys.POOL], cfg.max_failed_attempts,
                                       cfg.failed_attempts_window_s)
        keys = ["ip:" + client_address(request, settings.server.trusted_proxies)]
        await limiter.check(*keys)  # before parsing: malformed attempts count against the address
        try:
            login, secret = parse_basic(header)
            keys.append("client:" + login)
            await limiter.check(keys[-1])
            client = tokens.authenticate_client(login, secret)
        except Unauthorized:
            await limiter.failed(*keys)
            raise
        return web.json_response(tokens.issue(client.id, client.scopes))
    if settings.auth.open_token_endpoint:
        return web.json_response(tokens.issue("anonymous", ("ingest", "spec", "read")))
    raise Unauthorized("client credentials are required (HTTP Basic auth)", code="missing_credentials")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ingestion/generatejwt", generate_jwt)
