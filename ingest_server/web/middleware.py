"""Request ids, authentication, and the one place where errors become JSON responses."""

from __future__ import annotations

import logging
import uuid
from typing import Awaitable, Callable

import asyncpg
from aiohttp import web

from ..auth import Principal
from ..db import CONNECTION_ERRORS
from ..errors import IngestError, Unauthorized
from . import appkeys

log = logging.getLogger("ingest_server.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
BASIC_CODES = frozenset({"invalid_client", "missing_credentials"})  # the token endpoint's own
_UNMARKED = object()  # handlers under /api/ without a mark still need a valid token
DB_DOWN = CONNECTION_ERRORS + (asyncpg.ConnectionDoesNotExistError,
                               asyncpg.ConnectionFailureError)


def requires(scope: str | None) -> Callable[[Handler], Handler]:
    """Mark a handler with the token scope it needs (None: public, no token)."""

    def mark(handler: Handler) -> Handler:
        handler.required_scope = scope  # type: ignore[attr-defined]
        return handler

    return mark


def error_response(err: IngestError, request_id: str) -> web.Response:
    resp = web.json_response(err.to_json(), status=err.status)
    if err.status == 401:
        if err.code in BASIC_CODES:
            resp.headers["WWW-Authenticate"] = 'Basic realm="ingest-server", charset="UTF-8"'
        else:
            reason = "invalid_request" if err.code == "missing_token" else "invalid_token"
            resp.headers["WWW-Authenticate"] = f'Bearer realm="ingest-server", error="{reason}"'
    retry_after = err.details.get("retry_after_s") if isinstance(err.details, dict) else None
    if retry_after:
        resp.headers["Retry-After"] = str(int(retry_after))
    resp.headers["X-Request-ID"] = request_id
    return resp


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    try:
        resp = await handler(request)
    except IngestError as e:
        if e.status >= 500:
            log.error("request %s failed: %s (%s)", request_id, e.code, e.message)
        return error_response(e, request_id)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "upload_too_large"}.get(
            e.status, "http_error")
        err = IngestError(e.reason or "error", code=code, status=e.status)
        resp = error_response(err, request_id)
        if e.status == 405 and "Allow" in e.headers:
            resp.headers["Allow"] = e.headers["Allow"]
        return resp
    except DB_DOWN as e:
        log.error("request %s: database unavailable: %s", request_id, e.__class__.__name__)
        return error_response(IngestError("the database is unavailable, try again later",
                                          code="db_unavailable", status=503), request_id)
    except Exception:
        log.exception("request %s: unhandled error", request_id)
        return error_response(IngestError("internal error; quote the request id when reporting it",
                                          code="internal_error", status=500,
                                          request_id=request_id), request_id)
    resp.headers["X-Request-ID"] = request_id
    return resp


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    scope = getattr(request.match_info.route.handler, "required_scope", _UNMARKED)
    if scope is None or (scope is _UNMARKED and not request.path.startswith("/api/")):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required (GET /api/ingestion/generatejwt)",
                           code="missing_token")
    principal = request.app[appkeys.TOKENS].verify(token.strip())
    if scope is not _UNMARKED:
        principal.require(scope)
    request[PRINCIPAL] = principal
    return await handler(request)
