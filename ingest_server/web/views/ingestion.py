"""The upload endpoints (cQube paths) and upload status."""

from __future__ import annotations

from typing import Any, AsyncIterator

from aiohttp import web

from ...errors import BadRequest, NotFound
from ...ingest.model import UploadRequest
from ...ingest.responses import response_body
from ...ingest.spool import file_chunks
from .. import appkeys
from ..handler import profile_handler
from ..middleware import PRINCIPAL, requires
from ..multipart import Form, open_upload_form
from ..upload_request import OPTIONS, check_extension, upload_request
from .uploads import visible_client

def _request_if_complete(request: web.Request, form: Form, route: str) -> UploadRequest | None:
    """The upload's request when the fields read so far are enough, else None."""
    try:
        return upload_request(request, form, route)
    except BadRequest:
        return None


async def _ingest(request: web.Request, req: UploadRequest, form: Form,
                  source: AsyncIterator[bytes], record_refused: bool) -> dict[str, Any]:
    check_extension(form.filename, req.program_type)
    service = request.app[appkeys.INGEST]
    if req.program_type.archive:
        assert form.spooled is not None  # an archive is read from its central directory
        return await service.replay(req, file_chunks(form.spooled)) or \
            await service.ingest_zip(req, form.spooled, form.size, form.sha256)
    return await service.replay(req, source) or \
        await service.ingest_csv(req, source, request.content_length,
                                 record_refused=record_refused)


async def receive(request: web.Request, route: str, *,
                  record_refused: bool = False) -> dict[str, Any]:
    """The upload's answer. Streams the file when the fields before it say what to do, else
    spools it and reads on. ``record_refused``: see ``UploadService.ingest_csv``."""
    async with await open_upload_form(request, late_options=OPTIONS) as upload:
        form = await upload.until_file()
        req = _request_if_complete(request, form, route)
        if req is not None and not req.program_type.archive:
            return await _ingest(request, req, form, upload.file_chunks(), record_refused)
        form = await upload.spool_rest()
        assert form.spooled is not None
        return await _ingest(request, upload_request(request, form, route), form,
                             file_chunks(form.spooled), record_refused)


@requires("ingest")
async def new_programs(request: web.Request) -> web.Response:
    """State programme CSV: validated rows land under process_input/, rejected under ingestion_error/."""
    return web.json_response(await receive(request, "new_programs"))


@requires("ingest")
async def national_programs(request: web.Request) -> web.Response:
    """National programme ZIP: each <name>.csv validated against the event spec <name>."""
    return web.json_response(await receive(request, "national_programs"))


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
    app.router.add_post("/api/ingestion/new_programs", profile_handler(app, new_programs))
    app.router.add_post("/api/ingestion/national_programs",
                        profile_handler(app, national_programs))
    app.router.add_get("/api/ingestion/file-status", profile_handler(app, file_status))
