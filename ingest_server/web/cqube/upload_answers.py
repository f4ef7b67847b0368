"""Upload answers as cQube gives them: ``200 {"message": "File is being processed"}`` at the door.

cQube answers every well-formed upload at once and finds what is wrong with the data later
(file-status then says ``Error -><reason>``). We still process while the body streams, so by the
time we answer we know the outcome: it goes to the upload record (read back by file-status) and
into our extra fields beside ``message``. What cQube refuses at the door stays a 400 (form
fields, no file — :mod:`.error_answers` — and a national ZIP whose programme has no spec).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ...cqube import ajv
from ...stores.cqube_file_status import cqube_file_status
from ...cqube.status import file_status_body, file_status_word
from ...errors import FileRejected, IngestError, SpecNotFound, ZipRejected
from ...ingest.responses import response_body
from ...ingest.model import new_upload_id
from ...logs import log_event
from .. import appkeys
from ..middleware import PRINCIPAL, Handler, requires
from ..multipart import UPLOAD_FORM, within
from ..views.uploads import visible_client

log = logging.getLogger("ingest_server.web")
PROCESSING = "File is being processed"
NO_SCHEMA = "Schema doesn't exists for this program"
# Found in the data, which cQube only finds in the background: answered 200, reported later.
DATA_ERRORS = (FileRejected, ZipRejected, SpecNotFound)


def processing(record: dict[str, Any]) -> web.Response:
    """``{"message": "File is being processed"}`` and, beside it, what we already know."""
    ours = response_body(record)
    ours["detail"] = ours.pop("message")
    return web.json_response({"message": PROCESSING, "pid": record["pid"],
                              "file_status": file_status_word(record), **ours})


async def _read_rest(request: web.Request) -> int:
    """Read what is left of the body (cQube reads the whole file before answering)."""
    settings = request.app[appkeys.SETTINGS]
    limit, total = settings.limits.max_upload_bytes, 0
    while chunk := await within(settings.limits.body_idle_timeout_s,
                                request.content.readany()):
        total += len(chunk)
        if total > limit:
            break  # past the limit: stop reading; the answer stands
    return total


async def _record_refused(request: web.Request, err: IngestError) -> dict[str, Any]:
    """The upload record of an upload refused before its processing started (no spec for its
    ``ingestion_name``), so that file-status finds it as cQube's FileTracker would."""
    form, uploads = request[UPLOAD_FORM], request.app[appkeys.UPLOADS]
    q = request.query
    nbytes = form.size + await _read_rest(request)
    upload_id = new_upload_id()
    await uploads.create(upload_id=upload_id, route="new_programs",
                         client=request[PRINCIPAL].client, filename=form.filename,
                         kind=form.get("ingestion_type", q), program=form.get("program_name", q),
                         ingestion_name=form.get("ingestion_name", q), dry_run=False,
                         idempotency_key=None)
    await uploads.finish(upload_id, status="rejected", sha256=None, nbytes=nbytes,
                         error={"code": err.code, "message": err.message, "details": err.details})
    log_event(log, logging.INFO, "upload refused", event="upload_finished", upload_id=upload_id,
              route="new_programs", status="rejected", error_code=err.code)
    return await uploads.get(upload_id)


async def _record_of(request: web.Request, err: IngestError) -> dict[str, Any]:
    upload_id = err.details.get("upload_id")
    if upload_id is None:
        return await _record_refused(request, err)
    return await request.app[appkeys.UPLOADS].get(upload_id)


async def _record_answered(request: web.Request, resp: web.StreamResponse) -> dict[str, Any]:
    body = json.loads(resp.text)  # a native upload answer: small, whatever the file's size
    record = await request.app[appkeys.UPLOADS].get(body["upload_id"])
    return record if record is not None else body


def new_programs(native: Handler) -> Handler:
    @requires("ingest")
    async def cqube_new_programs(request: web.Request) -> web.StreamResponse:
        try:
            resp = await native(request)
        except DATA_ERRORS as e:
            if UPLOAD_FORM not in request:
                raise
            return processing(await _record_of(request, e))
        return processing(await _record_answered(request, resp))

    return cqube_new_programs


def _no_schema(record: dict[str, Any]) -> bool:
    """Nothing ingested because the ZIP's programme has no spec: cQube refuses that at once."""
    if (record.get("error") or {}).get("code") != "nothing_ingested":
        return False
    return any((m.get("error") or {}).get("code") == "spec_not_found"
               for m in record.get("members") or [])


def national_programs(native: Handler) -> Handler:
    @requires("ingest")
    async def cqube_national_programs(request: web.Request) -> web.StreamResponse:
        try:
            resp = await native(request)
        except DATA_ERRORS as e:
            if "upload_id" not in e.details:
                raise
            return processing(await _record_of(request, e))
        record = await _record_answered(request, resp)
        if _no_schema(record):
            return web.json_response({"message": NO_SCHEMA}, status=400)
        return processing(record)

    return cqube_national_programs


FILE_STATUS_FIELDS = ("filename", "ingestion_type", "ingestion_name")


def file_status(native: Handler) -> Handler:
    @requires("read")
    async def cqube_file_status_view(request: web.Request) -> web.Response:
        """cQube's file-status: all three query fields required; a national ZIP is found under
        ``ingestion_type=event`` and ``ingestion_name=<zip name without .zip>``."""
        q = request.query
        missing = [f for f in FILE_STATUS_FIELDS if not q.get(f)]
        if missing:
            return web.json_response({"message": [ajv.required(f) for f in missing]}, status=400)
        # Another client's upload answers as an unknown file, as the native file-status does.
        record = await cqube_file_status(request.app[appkeys.POOL],
                                         *(q[f] for f in FILE_STATUS_FIELDS),
                                         visible_client(request[PRINCIPAL]))
        if record is None:
            return web.json_response({"message": "No records found"}, status=400)
        body = file_status_body(record)
        body["upload"] = response_body(record)  # ours, beside cQube's "response"
        return web.json_response(body)

    return cqube_file_status_view
