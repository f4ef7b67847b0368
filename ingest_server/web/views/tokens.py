"""``GET /api/ingestion/generatejwt``: client credentials (HTTP Basic) in, a bearer token out.

Failed Basic attempts are counted per client id and per remote address (``ratelimit.py``):
past ``auth.max_failed_attempts`` within ``auth.failed_attempts_window_s`` the endpoint answers
429 ``rate_limited`` with ``Retry-After``, before the credentials are even checked.
"""

from aiohttp import web

from ...auth import parse_basic
from ...errors import Unauthorized
from ...ratelimit import FailureLimiter
from .. import appkeys
from ..middleware import requires

LIMITER = web.AppKey("token_failure_limiter", FailureLimiter)


@requires(None)
async def generate_jwt(request: web.Request) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    tokens = request.app[appkeys.TOKENS]
    header = request.headers.get("Authorization", "")
    if settings.auth.open_token_endpoint and is_empty_basic(header):
        header = ""  # Postman sends `Basic Og==` for an empty username and password
    if header.lower().startswith("basic "):
        limiter = request.app[LIMITER]
        keys = [("ip", request.remote or "")]
        limiter.check(*keys)  # before parsing: malformed attempts count against the address too
        try:
            login, secret = parse_basic(header)
            keys.append(("client", login))
            limiter.check(*keys)
            client = tokens.authenticate_client(login, secret)
        except Unauthorized:
            limiter.failed(*keys)
            raise
        return web.json_response(tokens.issue(client.id, client.scopes))
    if settings.auth.open_token_endpoint:
        return web.json_response(tokens.issue("anonymous", ("ingest", "spec", "read")))
    raise Unauthorized("client credentials are required (HTTP Basic auth)", code="missing_credentials")


def is_empty_basic(header: str) -> bool:
    """``Authorization: Basic`` with an empty user and password (``:``, base64 ``Og==``)."""
    kind, _, encoded = header.strip().partition(" ")
    return kind.lower() == "basic" and encoded.strip() in ("", "Og==")


def setup(app: web.Application) -> None:
    cfg = app[appkeys.SETTINGS].auth
    app[LIMITER] = FailureLimiter(cfg.max_failed_attempts, cfg.failed_attempts_window_s)
    app.router.add_get("/api/ingestion/generatejwt", generate_jwt)
