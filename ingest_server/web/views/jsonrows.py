"""JSON-row uploads: ``POST /api/ingestion/event|dimension|dataset`` (cQube's routes; both profiles).

The rows go through the same upload lifecycle as a CSV (``IngestService.ingest_csv``): the same
spec lookup, checks, object keys (whatever ``storage.layout``), record and idempotency. The body
is JSON, so it is held in memory: it is bounded by ``limits.max_json_bytes`` (413 past it).
"""

from __future__ import annotations

from aiohttp import web

from ...errors import BadRequest
from ...ingest.jsonrows import ROUTES, csv_chunks, parse_body
from ...ingest.model import UploadRequest
from ...programs import program_name, safe_name
from .. import appkeys
from ..middleware import PRINCIPAL, requires
from .specs import read_json


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


def _handler(route: str):
    @requires("ingest")
    async def post_rows(request: web.Request) -> web.Response:
        settings = request.app[appkeys.SETTINGS]
        data = parse_body(route, await read_json(request, settings.limits.max_json_bytes))
        safe_name(data.name, ROUTES[route][0])
        if data.program is not None:
            program_name(data.program)  # a safe name, and not a shared folder
        pt = request.app[appkeys.REGISTRY].program_type(ROUTES[route][2])
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and not (len(key) <= 200 and key.isprintable()):
            raise BadRequest("Idempotency-Key must be 1-200 printable characters",
                             code="invalid_idempotency_key")
        req = UploadRequest(program_type=pt, ingestion_name=data.name, program=data.program,
                            filename=f"{data.name}.json", client=request[PRINCIPAL].client,
                            idempotency_key=key)
        service = request.app[appkeys.INGEST]
        result = (await service.replay(req, csv_chunks(data))
                  or await service.ingest_csv(req, csv_chunks(data)))
        return web.json_response(_answer(route, result))

    post_rows.__name__ = f"post_{route}_rows"
    return post_rows


def setup(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_post(f"/api/ingestion/{route}", _handler(route))
