"""Errors as cQube's NestJS services answer them, on the paths its gateway sends to us.

- no token: 403 ``{"statusCode":403,"message":"Forbidden resource","error":"Forbidden"}``;
  a bad or expired token: 401;
- a missing or unknown form field: 400 ``{"message": [<AJV error>]}``;
- no file part: 400 ``{"message": "File is required"}``;
- a method or path it does not serve: 404 ``Cannot GET /<path without the gateway prefix>``,
  before any token check (Nest routes first, then its guard runs);
- anything else: Nest's ``{"statusCode", "message", "error"}`` with our stable ``code`` and
  ``details`` beside them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from ...cqube import ajv
from ...errors import IngestError, InvalidSpec
from ..middleware import Handler, error_response, request_id_of

PREFIXES = ("/api/ingestion", "/api/spec")
KEPT_HEADERS = ("WWW-Authenticate", "Retry-After", "Allow")
FORBIDDEN = {"statusCode": 403, "message": "Forbidden resource", "error": "Forbidden"}


def under_gateway(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


def service_path(path: str) -> str:
    """The path as cQube's service sees it, after its gateway strips the prefix."""
    for prefix in PREFIXES:
        if path.startswith(prefix + "/"):
            return path[len(prefix):]
    return path


def nest_body(status: int, message: Any, **extra: Any) -> dict[str, Any]:
    return {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase, **extra}


def cqube_error_body(err: IngestError, allowed_types: list[str] | None = None) -> tuple[int, Any]:
    """The status and body cQube answers for what we raised as ``err``."""
    code, details = err.code, err.details
    if code in ("missing_token", "insufficient_scope"):
        return 403, dict(FORBIDDEN)
    if err.status == 401:
        return 401, nest_body(401, "Unauthorized", code=code, details={"reason": err.message})
    if code == "missing_field" and details.get("field"):
        return 400, {"message": [ajv.required(details["field"])]}
    if code == "unknown_ingestion_type":
        return 400, {"message": [ajv.enum("ingestion_type", allowed_types or [])]}
    if code == "missing_file":
        return 400, {"message": "File is required"}
    if isinstance(err, InvalidSpec):
        return 400, {"message": ajv.spec_errors(details.get("keyword"), details.get("field"),
                                                err.message)}
    return err.status, nest_body(err.status, err.message, code=code, details=details)


def _answer(request: web.Request, status: int, body: Any,
            native: web.Response | None = None) -> web.Response:
    resp = web.json_response(body, status=status)
    for name in KEPT_HEADERS:
        if native is not None and name in native.headers:
            resp.headers[name] = native.headers[name]
    resp.headers["X-Request-ID"] = request_id_of(request)
    return resp


def cannot(request: web.Request) -> web.Response:
    """Nest's answer for a method and path it has no route for."""
    message = f"Cannot {request.method} {service_path(request.path)}"
    return _answer(request, 404, nest_body(404, message))


def _allowed_types(request: web.Request) -> list[str]:
    from .. import appkeys  # noqa: PLC0415

    registry = request.app[appkeys.REGISTRY]
    return [t.name for t in registry.types_for("new_programs")]


@web.middleware
async def cqube_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Between the errors middleware (outside) and auth (inside): errors raised on the paths of
    cQube's gateway get cQube's bodies; everything else passes through untouched."""
    if not under_gateway(request.path):
        return await handler(request)
    routing = getattr(request.match_info, "http_exception", None)
    if routing is not None and routing.status in (404, 405):
        # Nest routes before its guard runs: a method or path it lacks is 404 even without a
        # token (the auth middleware, inside this one, would answer 403 first).
        return cannot(request)
    try:
        return await handler(request)
    except IngestError as e:
        if e.status >= 500:
            raise  # the errors middleware logs it and counts it in the metrics
        status, body = cqube_error_body(e, _allowed_types(request))
        return _answer(request, status, body, error_response(e, request_id_of(request)))
    except web.HTTPException as e:
        if e.status in (404, 405):
            return cannot(request)
        if e.status < 400:
            raise
        return _answer(request, e.status, nest_body(e.status, e.reason or "error"))
