"""tus 1.0 at ``/api/ingestion/resumable``: discovery, creation, HEAD, PATCH, termination.

Thin: headers in, :class:`ResumableService` does the work, headers out. ``Tus-Resumable`` is added
to every answer under the prefix (errors included) by an ``on_response_prepare`` hook. The PATCH
that completes an upload answers 204 with ``Upload-Id`` / ``Upload-Status`` and
``Content-Location: /api/ingestion/uploads/{id}``, the record a one-shot upload would have made;
HEAD repeats them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from aiohttp import web

from ...aio import in_background, uncancellable
from ...errors import IngestError, UnsupportedMedia
from ...resumable import protocol
from ...resumable.service import CHECKSUMS, ResumableService, parse_checksum
from ...resumable.staging import staging_for
from ...stores.resumable import ResumableStore
from .. import appkeys
from ..middleware import PRINCIPAL, requires
from ..body import body_chunks
from ..multipart import Form, clean_filename
from ..upload_request import check_extension, upload_request

log = logging.getLogger("ingest_server.resumable")
PREFIX = "/api/ingestion/resumable"
RESUMABLE = appkeys.RESUMABLE
UPLOAD_ID = web.RequestKey("tus_upload_id", str)
LOCATION = web.RequestKey("tus_location", str)
EXPIRE_EVERY_S = 60.0


def _client(request: web.Request) -> str | None:
    return request[PRINCIPAL].client


def _url(tus_id: str) -> str:
    return f"{PREFIX}/{tus_id}"


def _state_headers(row: dict[str, Any]) -> dict[str, str]:
    headers = {"Upload-Offset": str(row["upload_offset"]), "Upload-Length": str(row["length"]),
               "Cache-Control": "no-store"}
    if row["status"] == "done":
        headers.update({"Upload-Id": row["upload_id"], "Upload-Status": row["upload_status"],
                        "Content-Location": f"/api/ingestion/uploads/{row['upload_id']}"})
    else:
        headers["Upload-Expires"] = protocol.http_date(row["expires_at"])
    return headers


@requires(None)
async def options(request: web.Request) -> web.Response:
    """Discovery: version, extensions, size limit and checksum algorithms (no token needed)."""
    limit = request.app[appkeys.SETTINGS].limits.max_upload_bytes
    return web.Response(status=204, headers={
        "Tus-Version": protocol.TUS_VERSION, "Tus-Extension": protocol.EXTENSIONS,
        "Tus-Max-Size": str(limit), "Tus-Checksum-Algorithm": ",".join(CHECKSUMS)})


@requires("ingest")
async def create(request: web.Request) -> web.Response:
    """Creation: ``Upload-Length`` and ``Upload-Metadata`` (filename, ingestion_type,
    ingestion_name, program_name, dry_run, max_error_rate, encoding), checked as the one-shot
    routes check their form; ``ingestion_type=national`` (or a .zip without one) is a national
    programme ZIP. With a body (creation-with-upload), that is the first PATCH."""
    protocol.check_version(request.headers.get("Tus-Resumable"))
    if "Upload-Defer-Length" in request.headers:
        raise IngestError("Upload-Defer-Length is not supported: send Upload-Length",
                          code="defer_length_unsupported")
    length = protocol.parse_length(request.headers.get("Upload-Length"), "Upload-Length")
    raw = request.headers.get("Upload-Metadata", "")
    fields = protocol.parse_metadata(raw)
    name = fields.get("filename") or fields.get("name")  # tus-js-client and Uppy send "name"
    form = Form(fields=fields, filename=clean_filename(name))
    kind = form.get("ingestion_type", request.query)
    pt = request.app[appkeys.REGISTRY].program_type(kind) if kind else None
    archive = pt.archive if pt is not None else \
        (not kind and form.filename.lower().endswith(".zip"))
    route = "national_programs" if archive else "new_programs"
    req = upload_request(request, form, route)
    check_extension(form.filename, req.program_type)
    with_upload = bool(request.content_length) or request.headers.get("Transfer-Encoding")
    if with_upload:
        _check_media_type(request)
    row = await request.app[RESUMABLE].create(req, length=length, metadata=raw)
    request[LOCATION] = _url(row["id"])  # also on the answer of a failed first part
    if with_upload:  # creation-with-upload: the body is the first PATCH
        row = await _append(request, row["id"], 0)
    return web.Response(status=201, headers=dict(_state_headers(row), Location=_url(row["id"])))


@requires("ingest")
async def head(request: web.Request) -> web.Response:
    protocol.check_version(request.headers.get("Tus-Resumable"))
    row = await request.app[RESUMABLE].status(request.match_info["id"], _client(request))
    headers = _state_headers(row)
    if row["metadata"]:
        headers["Upload-Metadata"] = row["metadata"]
    return web.Response(status=200, headers=headers)


@requires("ingest")
async def patch(request: web.Request) -> web.Response:
    protocol.check_version(request.headers.get("Tus-Resumable"))
    _check_media_type(request)
    offset = protocol.parse_length(request.headers.get("Upload-Offset"), "Upload-Offset")
    row = await _append(request, request.match_info["id"], offset)
    return web.Response(status=204, headers=_state_headers(row))


def _check_media_type(request: web.Request) -> None:
    if request.content_type != protocol.MEDIA_TYPE:
        raise UnsupportedMedia(f"upload bytes must be sent as {protocol.MEDIA_TYPE}",
                               code="unsupported_media_type")


async def _append(request: web.Request, tus_id: str, offset: int) -> dict[str, Any]:
    """The request's body at ``offset``; the upload's row after it."""
    checksum = parse_checksum(request.headers.get("Upload-Checksum"))
    service = request.app[RESUMABLE]
    try:
        # Run to its end even if the handler is cancelled (a client gone, with handler
        # cancellation on): what arrived is recorded, the lease released, a complete upload
        # lands — a dropped connection costs the client only the bytes the server never read.
        row, error = await uncancellable(_outcome(service.patch(
            tus_id, _client(request), offset=offset, body=body_chunks(request),
            content_length=request.content_length, checksum=checksum)))
        if error is not None:
            raise error
    except IngestError as e:
        if "upload_id" in e.details:  # completed, but the file was rejected: where to look
            request[UPLOAD_ID] = e.details["upload_id"]
        raise
    return row


@requires("ingest")
async def terminate(request: web.Request) -> web.Response:
    protocol.check_version(request.headers.get("Tus-Resumable"))
    await request.app[RESUMABLE].terminate(request.match_info["id"], _client(request))
    return web.Response(status=204)


async def _outcome(pending) -> tuple[Any, IngestError | None]:
    """A client error as a value: when nobody awaits the task any more, it is not "never
    retrieved"."""
    try:
        row, _ = await pending
    except IngestError as e:
        return None, e
    return row, None


async def tus_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: ``Tus-Resumable`` on every answer of the protocol's routes."""
    if not request.path.startswith(PREFIX):
        return
    response.headers["Tus-Resumable"] = protocol.TUS_VERSION
    if response.status == 412:
        response.headers["Tus-Version"] = protocol.TUS_VERSION
    if LOCATION in request and "Location" not in response.headers:
        response.headers["Location"] = request[LOCATION]
    if UPLOAD_ID in request and "Upload-Id" not in response.headers:
        response.headers["Upload-Id"] = request[UPLOAD_ID]
        response.headers["Content-Location"] = f"/api/ingestion/uploads/{request[UPLOAD_ID]}"


async def resumable_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    service = ResumableService(
        settings=settings, ingest=app[appkeys.INGEST], store=ResumableStore(app[appkeys.POOL]),
        staging=staging_for(app[appkeys.STORAGE]),
        spool_dir=settings.path(settings.server.state_dir) / "spool")
    app[RESUMABLE] = service
    await service.expire()
    async with in_background(_expire_forever(service)):
        yield


async def _expire_forever(service: ResumableService) -> None:
    while True:
        await asyncio.sleep(EXPIRE_EVERY_S)
        try:
            await service.expire()
        except (IngestError, OSError) as e:  # the stores raise IngestError for the database
            log.warning("expiring resumable uploads failed: %s", e)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(resumable_ctx)
    app.on_response_prepare.append(tus_headers)
    app.router.add_route("OPTIONS", PREFIX, options)
    app.router.add_post(PREFIX, create)
    app.router.add_route("OPTIONS", PREFIX + "/{id}", options)
    app.router.add_route("HEAD", PREFIX + "/{id}", head)
    app.router.add_route("PATCH", PREFIX + "/{id}", patch)
    app.router.add_delete(PREFIX + "/{id}", terminate)
