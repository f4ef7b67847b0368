"""``GET /api/ingestion/generatejwt``: client credentials (HTTP Basic) in, a bearer token out.

Failed Basic attempts are counted per (client id, address) pair, per address and per client id,
in PostgreSQL so every instance shares the counts (``login_limits.py`` says the policy): a blocked
pair or address is answered 429 ``rate_limited`` with ``Retry-After`` before the credentials are
even checked; a client id guessed at from many addresses is slowed down, never locked out.

The answer is the bare token as ``text/plain`` (what cQube's clients and a shell expect: they send
``Authorization: Bearer <body>`` as is) unless the client asks for JSON with
``Accept: application/json``; then it is ``{"token", "token_type", "expires_in"}``. Both profiles.
"""

from aiohttp import web

from ...auth import parse_basic
from ...errors import Unauthorized
from ...config import AuthConfig
from ...login_limits import LoginLimits
from ...stores.login_failures import SharedFailureLimiter
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
        limits = login_limits(request.app[appkeys.POOL], settings.auth)
        address = client_address(request, settings.server.trusted_proxies)
        await limits.check_address(address)
        try:
            login, secret = parse_basic(header)
        except Unauthorized:
            await limits.failed(address)  # malformed credentials count against the address
            raise
        await limits.check_login(login, address)
        try:
            client = tokens.authenticate_client(login, secret)
        except Unauthorized:
            await limits.failed(address, login)
            raise
        return token_response(request, tokens.issue(client.id, client.scopes))
    if settings.auth.open_token_endpoint:
        return token_response(request, tokens.issue("anonymous", ("ingest", "spec", "read")))
    raise Unauthorized("client credentials are required (HTTP Basic auth)", code="missing_credentials")


def login_limits(pool, cfg: AuthConfig) -> LoginLimits:
    on = cfg.max_failed_attempts > 0  # 0 turns every part off, as it always did
    return LoginLimits(SharedFailureLimiter(pool, cfg.failed_attempts_window_s),
                       per_pair=cfg.max_failed_attempts,
                       per_address=cfg.max_failed_attempts_per_address if on else 0,
                       slow_down_after=cfg.slow_down_after_failures if on else 0,
                       slow_down_s=cfg.slow_down_s)


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
