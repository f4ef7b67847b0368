"""The upload endpoints (cQube paths) and upload status."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from ...errors import BadRequest, NotFound, UnsupportedMedia
from ...ingest.responses import response_body
from ...ingest.model import UploadRequest
from ...programs import ProgramType, program_name, safe_name
from .. import appkeys
from ..middleware import PRINCIPAL, requires
from ...ingest.spool import file_chunks
from ..cqube import handler_for
from ..multipart import UPLOAD_FORM, Form, UploadForm, open_form
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
    """The upload's request from the form and query. The program types registered for ``route``
    decide what is asked: a route with one type (national ZIPs) needs no ``ingestion_type``."""
    q = request.query
    request[UPLOAD_FORM] = form
    types = request.app[appkeys.REGISTRY].types_for(route)
    if len(types) == 1 and types[0].archive:
        pt, name = types[0], None
    else:
        kind = form.get("ingestion_type", q)
        if not kind:
            raise BadRequest("ingestion_type is required (event, dimension or dataset)",
                             code="missing_field", field="ingestion_type")
        pt = next((t for t in types if t.name == kind), None)
        if pt is None:
            known = sorted(t.name for t in types)
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


def _check_extension(filename: str, pt: ProgramType) -> None:
    allowed = pt.extensions
    if "." in filename and not filename.lower().endswith(allowed):
        raise UnsupportedMedia(f"'{filename}' is not one of {', '.join(allowed)}",
                               code="unsupported_file_type", allowed=list(allowed))


async def _open_upload_form(request: web.Request) -> UploadForm:
    settings = request.app[appkeys.SETTINGS]
    limit = settings.limits.max_upload_bytes
    reader = await open_form(request, limit)
    return UploadForm(reader, limit=limit, late_options=OPTIONS,
                      spool_dir=settings.path(settings.server.state_dir) / "spool",
                      idle_s=settings.limits.body_idle_timeout_s)


def _request_if_complete(request: web.Request, form: Form, route: str) -> UploadRequest | None:
    """The upload's request when the fields read so far are enough, else None."""
    try:
        return _upload_request(request, form, route)
    except BadRequest:
        return None


async def _ingest(request: web.Request, req: UploadRequest, form: Form,
                  source: AsyncIterator[bytes]) -> web.Response:
    _check_extension(form.filename, req.program_type)
    service = request.app[appkeys.INGEST]
    if req.program_type.archive:
        assert form.spooled is not None  # an archive is read from its central directory
        result = await service.replay(req, file_chunks(form.spooled)) or \
            await service.ingest_zip(req, form.spooled, form.size, form.sha256)
    else:
        result = await service.replay(req, source) or \
            await service.ingest_csv(req, source, request.content_length)
    return web.json_response(result)


async def _upload(request: web.Request, route: str) -> web.Response:
    """Stream the file when the fields before it say what to do, else spool it and read on."""
    async with await _open_upload_form(request) as upload:
        form = await upload.until_file()
        req = _request_if_complete(request, form, route)
        if req is not None and not req.program_type.archive:
            return await _ingest(request, req, form, upload.file_chunks())
        form = await upload.spool_rest()
        assert form.spooled is not None
        return await _ingest(request, _upload_request(request, form, route), form,
                             file_chunks(form.spooled))


@requires("ingest")
async def new_programs(request: web.Request) -> web.Response:
    """State programme CSV: validated rows land under process_input/, rejected under ingestion_error/."""
    return await _upload(request, "new_programs")


@requires("ingest")
async def national_programs(request: web.Request) -> web.Response:
    """National programme ZIP: each <name>.csv validated against the event spec <name>."""
    return await _upload(request, "national_programs")


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
