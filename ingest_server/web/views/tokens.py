"""``GET /api/ingestion/generatejwt``: client credentials (HTTP Basic) in, a bearer token out.

Failed Basic attempts are counted per client id and per remote address, in PostgreSQL so every
instance shares the counts (``login_limits.py``): past ``auth.max_failed_attempts`` within
``auth.failed_attempts_window_s`` the endpoint answers 429 ``rate_limited`` with ``Retry-After``,
before the credentials are even checked.

The answer is the bare token as ``text/plain`` (what cQube's clients and a shell expect: they send
``Authorization: Bearer <body>`` as is) unless the client asks for JSON with
``Accept: application/json``; then it is ``{"token", "token_type", "expires_in"}``. Both profiles.
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
    if settings.auth.open_token_endpoint and is_empty_basic(header):
        header = ""  # Postman sends `Basic Og==` for an empty username and password
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
        return token_response(request, tokens.issue(client.id, client.scopes))
    if settings.auth.open_token_endpoint:
        return token_response(request, tokens.issue("anonymous", ("ingest", "spec", "read")))
    raise Unauthorized("client credentials are required (HTTP Basic auth)", code="missing_credentials")


def wants_json(request: web.Request) -> bool:
    """Whether the Accept header names application/json (not merely */*)."""
    accept = request.headers.get("Accept", "")
    return any(part.split(";", 1)[0].strip().lower() == "application/json"
               for part in accept.split(","))


def token_response(request: web.Request, issued: dict) -> web.Response:
    if wants_json(request):
        return web.json_response(issued)
    return web.Response(text=issued["token"], content_type="text/plain")


def is_empty_basic(header: str) -> bool:
    """``Authorization: Basic`` with an empty user and password (``:``, base64 ``Og==``)."""
    kind, _, encoded = header.strip().partition(" ")
    return kind.lower() == "basic" and encoded.strip() in ("", "Og==")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ingestion/generatejwt", generate_jwt)
