"""The upload endpoints (cQube paths) and upload status."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from ...errors import BadRequest, NotFound
from ...ingest.model import UploadRequest
from ...ingest.responses import response_body
from ...ingest.spool import file_chunks
from .. import appkeys
from ..cqube import handler_for
from ..middleware import PRINCIPAL, requires
from ..multipart import Form, UploadForm, open_form
from ..upload_request import OPTIONS, check_extension, upload_request
from .uploads import visible_client

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
        return upload_request(request, form, route)
    except BadRequest:
        return None


async def _ingest(request: web.Request, req: UploadRequest, form: Form,
                  source: AsyncIterator[bytes]) -> web.Response:
    check_extension(form.filename, req.program_type)
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
        return await _ingest(request, upload_request(request, form, route), form,
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
