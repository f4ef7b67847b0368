"""Upload answers as cQube gives them: ``200 {"message": "File is being processed"}`` at the door.

cQube answers every well-formed upload at once and finds what is wrong with the data later
(file-status then says ``Error -><reason>``). We still process while the body streams, so by the
time we answer we know the outcome: it goes to the upload record (read back by file-status) and
into our extra fields beside ``message``. What cQube refuses at the door stays a 400 (form
fields, no file — :mod:`.error_answers` — and a national ZIP whose programme has no spec).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...cqube import ajv
from ...cqube.status import file_status_body, file_status_word, tracked_as_national
from ...errors import FileRejected, SpecNotFound, ZipRejected
from ...ingest.responses import response_body
from .. import appkeys
from ..middleware import PRINCIPAL, requires
from ..views.ingestion import receive
from ..views.uploads import visible_client

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


async def _outcome(request: web.Request, route: str) -> dict[str, Any]:
    """The upload's record, whatever its outcome: the native path's answer (a refused upload
    too, recorded as cQube's FileTracker would: file-status finds it), read back from the
    store for what the answer leaves out (``pid``)."""
    try:
        answer = await receive(request, route, record_refused=True)
    except DATA_ERRORS as e:
        if "upload_id" not in e.details:
            raise  # refused before the upload started: cQube refuses it at the door too
        answer = {"upload_id": e.details["upload_id"]}
    record = await request.app[appkeys.UPLOADS].get(answer["upload_id"])
    return record if record is not None else answer


@requires("ingest")
async def new_programs(request: web.Request) -> web.Response:
    return processing(await _outcome(request, "new_programs"))


def _no_schema(record: dict[str, Any]) -> bool:
    """Nothing ingested because the ZIP's programme has no spec: cQube refuses that at once."""
    if (record.get("error") or {}).get("code") != "nothing_ingested":
        return False
    return any((m.get("error") or {}).get("code") == "spec_not_found"
               for m in record.get("members") or [])


@requires("ingest")
async def national_programs(request: web.Request) -> web.Response:
    record = await _outcome(request, "national_programs")
    if _no_schema(record):
        return web.json_response({"message": NO_SCHEMA}, status=400)
    return processing(record)


FILE_STATUS_FIELDS = ("filename", "ingestion_type", "ingestion_name")


@requires("read")
async def file_status(request: web.Request) -> web.Response:
    """cQube's file-status: all three query fields required; a national ZIP is found under
    ``ingestion_type=event`` and ``ingestion_name=<zip name without .zip>``."""
    q = request.query
    missing = [f for f in FILE_STATUS_FIELDS if not q.get(f)]
    if missing:
        return web.json_response({"message": [ajv.required(f) for f in missing]}, status=400)
    filename, kind, name = (q[f] for f in FILE_STATUS_FIELDS)
    # Another client's upload answers as an unknown file, as the native file-status does.
    record = await request.app[appkeys.UPLOADS].file_status(
        filename, kind, name, client=visible_client(request[PRINCIPAL]),
        or_national=tracked_as_national(filename, kind, name))
    if record is None:
        return web.json_response({"message": "No records found"}, status=400)
    body = file_status_body(record)
    body["upload"] = response_body(record)  # ours, beside cQube's "response"
    return web.json_response(body)

