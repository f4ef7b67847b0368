"""JSON-row uploads: ``POST /api/ingestion/event|dimension|dataset`` (cQube's routes; both profiles).

The rows go through the same upload lifecycle as a CSV (``UploadService.ingest_csv``): the same
spec lookup, checks, object keys (whatever ``storage.layout``), record and idempotency. The body
is bounded by ``limits.max_json_bytes`` (413 past it, read no further) and read with the idle
timeout of every body (``web/body.py``), spooled to disk, and
read in a thread a row at a time (``ingest.jsonrows``): never parsed whole, never on the loop.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ...ingest.jsonrows import BODIES, csv_chunks, scan_body
from ...ingest.model import UploadRequest
from ...ingest.spool import spool
from ...plugins.programs import program_name, safe_name
from .. import appkeys
from ..body import body_chunks
from ..middleware import PRINCIPAL, requires
from ..upload_request import idempotency_key


def _answer(kind: str, result: dict) -> dict:
    valid, invalid = result.get("valid_rows", 0), result.get("invalid_rows", 0)
    if result.get("status") == "uploaded" and valid:
        message = f"{kind.capitalize()} added successfully"
    elif result.get("status") == "uploaded":
        message = f"No valid {kind} record: every row was rejected"
    else:
        message = (result.get("error") or {}).get("message") or result.get("message", "")
    ours = dict(result)
    ours["detail"] = ours.pop("message", None)
    return {"message": message, "invalid_record_count": invalid, "valid_record_count": valid,
            **ours}


def _handler(kind: str):
    @requires("ingest")
    async def post_rows(request: web.Request) -> web.Response:
        settings = request.app[appkeys.SETTINGS]
        spool_dir = settings.path(settings.server.state_dir) / "spool"
        body = await spool(body_chunks(request, settings.limits.max_json_bytes), spool_dir)
        try:
            return await _ingest(request, body.path)
        finally:
            body.path.unlink(missing_ok=True)

    async def _ingest(request: web.Request, path) -> web.Response:
        data = await asyncio.to_thread(scan_body, kind, path)
        safe_name(data.name, BODIES[kind][0])
        if data.program is not None:
            program_name(data.program)  # a safe name, and not a shared folder
        service = request.app[appkeys.INGEST]
        pt = service.program_type(BODIES[kind][2])
        key = idempotency_key(request)
        req = UploadRequest(program_type=pt, ingestion_name=data.name, program=data.program,
                            filename=f"{data.name}.json", client=request[PRINCIPAL].client,
                            idempotency_key=key)
        result = (await service.replay(req, csv_chunks(kind, path, data))
                  or await service.ingest_csv(req, csv_chunks(kind, path, data)))
        return web.json_response(_answer(kind, result))

    post_rows.__name__ = f"post_{kind}_rows"
    return post_rows


def setup(app: web.Application) -> None:
    for kind in BODIES:
        app.router.add_post(f"/api/ingestion/{kind}", _handler(kind))
