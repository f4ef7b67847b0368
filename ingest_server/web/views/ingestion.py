"""The upload endpoints (cQube paths) and upload status."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from aiohttp import web

from ...errors import BadRequest, NotFound, UnsupportedMedia
from ...ingest.responses import response_body
from ...ingest.service import UploadRequest
from ...programs import program_name, safe_name
from .. import appkeys
from ..middleware import PRINCIPAL, requires
from ...ingest.spool import file_chunks
from ..cqube import handler_for
from ..multipart import UPLOAD_FORM, Form, open_form, read_form
from .uploads import visible_client

OPTIONS = frozenset({"ingestion_type", "ingestion_name", "program_name", "dry_run",
                     "max_error_rate", "encoding"})
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def _bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    low = value.strip().lower()
    if low in TRUE | FALSE:
        return low in TRUE
    raise BadRequest(f"{name} must be true or false", code="invalid_field", field=name)


def _rate(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise BadRequest("max_error_rate must be a number from 0 to 1", code="invalid_field",
                         field="max_error_rate")
    return rate


def _upload_request(request: web.Request, form: Form, route: str) -> UploadRequest:
    q = request.query
    request[UPLOAD_FORM] = form
    registry = request.app[appkeys.REGISTRY]
    if route == "national_programs":
        pt = registry.program_type("national")
        name = None
    else:
        kind = form.get("ingestion_type", q)
        if not kind:
            raise BadRequest("ingestion_type is required (event, dimension or dataset)",
                             code="missing_field", field="ingestion_type")
        pt = registry.program_type(kind)
        if pt is None or pt.route != route:
            known = sorted(n for n, p in registry.program_types.items() if p.route == route)
            raise BadRequest(f"unknown ingestion_type '{kind}' (expected one of {', '.join(known)})",
                             code="unknown_ingestion_type", field="ingestion_type")
        name = form.get("ingestion_name", q)
        if not name:
            raise BadRequest("ingestion_name is required", code="missing_field",
                             field="ingestion_name")
        safe_name(name, "ingestion_name")
    program = form.get("program_name", q) or None
    if program is not None:
        # Reserved only where it names the data folder (dimension and dataset keys ignore it).
        if "{program}" in pt.valid_key:
            program_name(program)
        else:
            safe_name(program, "program_name")
    elif pt.needs_program:
        raise BadRequest(f"program_name is required for ingestion_type '{pt.name}'",
                         code="missing_field", field="program_name")
    encoding = form.get("encoding", q) or None
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 200 and key.isprintable()):
        raise BadRequest("Idempotency-Key must be 1-200 printable characters",
                         code="invalid_idempotency_key")
    return UploadRequest(program_type=pt, ingestion_name=name or "", program=program,
                         filename=form.filename, client=request[PRINCIPAL].client,
                         dry_run=_bool(form.get("dry_run", q), "dry_run"),
                         max_error_rate=_rate(form.get("max_error_rate", q)),
                         encoding=encoding, idempotency_key=key)


def _ready_for_csv(request: web.Request):
    def ready(form: Form) -> bool:
        try:
            _upload_request(request, form, "new_programs")
        except BadRequest:
            return False
        return True

    return ready


def _check_extension(filename: str, allowed: tuple[str, ...]) -> None:
    if "." in filename and not filename.lower().endswith(allowed):
        raise UnsupportedMedia(f"'{filename}' is not one of {', '.join(allowed)}",
                               code="unsupported_file_type", allowed=list(allowed))


async def _read_upload_form(request: web.Request, *, ready, stream) -> Form:
    """The form of an upload; the file streams into ``stream`` when ``ready``, else is spooled."""
    settings = request.app[appkeys.SETTINGS]
    limit = settings.limits.max_upload_bytes
    reader = await open_form(request, limit)
    return await read_form(reader, limit=limit, ready=ready, stream=stream, late_options=OPTIONS,
                           spool_dir=settings.path(settings.server.state_dir) / "spool",
                           idle_s=settings.limits.body_idle_timeout_s)


@contextlib.contextmanager
def _removing_spool(form: Form):
    try:
        yield form
    finally:
        if form.spooled is not None:
            form.spooled.unlink(missing_ok=True)


@requires("ingest")
async def new_programs(request: web.Request) -> web.Response:
    """State programme CSV: validated rows land under process_input/, rejected under ingestion_error/."""
    service = request.app[appkeys.INGEST]
    result: dict[str, Any] = {}

    async def stream(form: Form, chunks: AsyncIterator[bytes]) -> None:
        req = _upload_request(request, form, "new_programs")
        _check_extension(form.filename, (".csv", ".txt"))
        result.update(await service.replay(req, chunks) or
                      await service.ingest_csv(req, chunks, request.content_length))

    form = await _read_upload_form(request, ready=_ready_for_csv(request), stream=stream)
    with _removing_spool(form):
        if form.spooled is not None:
            await stream(form, file_chunks(form.spooled))
    return web.json_response(result)


@requires("ingest")
async def national_programs(request: web.Request) -> web.Response:
    """National programme ZIP: each <name>.csv validated against the event spec <name>."""
    service = request.app[appkeys.INGEST]
    form = await _read_upload_form(request, ready=lambda form: False, stream=None)
    with _removing_spool(form):
        req = _upload_request(request, form, "national_programs")
        _check_extension(form.filename, (".zip",))
        result = await service.replay(req, file_chunks(form.spooled)) or \
            await service.ingest_zip(req, form.spooled, form.size)
    return web.json_response(result)


@requires("read")
async def file_status(request: web.Request) -> web.Response:
    """cQube's status query: the latest upload of a file name (and type and name, when given)."""
    q = request.query
    filename = q.get("filename")
    if not filename:
        raise BadRequest("filename is required", code="missing_field", field="filename")
    record = await request.app[appkeys.UPLOADS].file_status(
        filename, q.get("ingestion_type") or None, q.get("ingestion_name") or None,
        client=visible_client(request[PRINCIPAL]))
    if record is None:
        raise NotFound(f"no upload of '{filename}' was found", code="upload_not_found",
                       filename=filename)
    return web.json_response(response_body(record))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/ingestion/new_programs",
                        handler_for(app, "new_programs", new_programs))
    app.router.add_post("/api/ingestion/national_programs",
                        handler_for(app, "national_programs", national_programs))
    app.router.add_get("/api/ingestion/file-status", handler_for(app, "file_status", file_status))
