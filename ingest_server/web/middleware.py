"""Request ids, authentication, and the one place where errors become JSON responses."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Callable

from aiohttp import web

from .. import metrics
from ..auth import Principal
from ..errors import (DatabaseError, IngestError, InsufficientStorage, StorageError,
                      Unauthorized)
from ..logs import ACCESS_LOGGER, REQUEST_ID as REQUEST_ID_VAR, log_event
from . import appkeys
from .handler import Handler

log = logging.getLogger("ingest_server.web")
access_log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
BASIC_CODES = frozenset({"invalid_client", "missing_credentials"})  # the token endpoint's own
_UNMARKED = object()  # handlers under /api/ without a mark still need a valid token
OPEN_SPEC_PRINCIPAL = Principal(client="anonymous", scopes=frozenset({"spec"}))
# The database's errors arrive as DatabaseError from the stores: a lost connection here is the
# client's (a reset or a disconnect while its body was read).
CONNECTION_LOST = (ConnectionError, OSError)


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


def request_id_of(request: web.Request) -> str:
    """The client's X-Request-ID when it is sane, else a new one; fixed once per request."""
    if REQUEST_ID not in request:
        incoming = request.headers.get("X-Request-ID", "")
        request[REQUEST_ID] = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() \
            else uuid.uuid4().hex
    return request[REQUEST_ID]


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: headers of a streamed answer leave before any middleware sees it
    returned, so the request id is set here, just before they are sent."""
    response.headers["X-Request-ID"] = request_id_of(request)


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One JSON access line and the HTTP metrics per request; outermost, so it sees the final
    status. Logs the path without the query string, and never headers or bodies."""
    request_id = request_id_of(request)
    token = REQUEST_ID_VAR.set(request_id)
    started = time.perf_counter()
    status, size = 500, None
    try:
        resp = await handler(request)
        status = resp.status
        size = resp.body_length if resp.prepared else resp.content_length
        return resp
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's convention)
        raise
    except web.HTTPException as e:  # redirects pass the errors middleware as exceptions
        status = e.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "(unmatched)"
        principal = request.get(PRINCIPAL)
        metrics.http_request(request.method, template, status, elapsed)
        log_event(access_log, logging.INFO, "request", event="http_request",
                  method=request.method, path=request.path, route=template, status=status,
                  duration_ms=round(elapsed * 1000, 3), bytes_in=request.content_length,
                  bytes_out=size, client=principal.client if principal else None,
                  remote=request.remote)
        REQUEST_ID_VAR.reset(token)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    try:
        resp = await handler(request)
    except IngestError as e:
        if isinstance(e, (StorageError, InsufficientStorage)):
            metrics.storage_error(e.code)
        elif isinstance(e, DatabaseError):
            metrics.db_error(e.code)
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
    except CONNECTION_LOST as e:
        log.info("request %s: connection lost: %s", request_id, e.__class__.__name__)
        return error_response(IngestError("the connection was lost", code="connection_lost",
                                          status=400), request_id)
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
    if scope == "spec" and not header and request.app[appkeys.SETTINGS].auth.open_spec_api:
        request[PRINCIPAL] = OPEN_SPEC_PRINCIPAL  # as cQube's spec service: no token at all
        return await handler(request)
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required (GET /api/ingestion/generatejwt)",
                           code="missing_token")
    principal = request.app[appkeys.TOKENS].verify(token.strip())
    if scope is not _UNMARKED:
        principal.require(scope)
    request[PRINCIPAL] = principal
    return await handler(request)
