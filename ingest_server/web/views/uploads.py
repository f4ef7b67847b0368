"""Upload records and their files: listing with filters, one upload, its error and valid rows,
and retraction.

Each client sees only its own uploads; a token with the ``admin`` scope sees (and may retract)
every client's. Someone else's upload answers 404 ``upload_not_found``, exactly like a missing
one, so ids cannot be probed.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, AsyncIterator

from aiohttp import web

from ...auth import Principal
from ...errors import BadRequest, IngestError, NotFound
from ...formula_safe import formula_safe
from ...ingest.responses import response_body
from ...stores.object_owners import foreign, publisher
from ...retraction import retract
from ...stores.uploads import RETRACT_STATUSES, STATUSES, UploadFilter
from .. import appkeys
from ..middleware import PRINCIPAL, requires

TRUE = {"1", "true", "yes", "on"}


def visible_client(principal: Principal) -> str | None:
    """The client whose uploads ``principal`` may see; None: every client's (admin)."""
    return None if "admin" in principal.scopes else principal.client


def _when(value: str | None, name: str, *, end: bool) -> datetime | None:
    """An ISO date or date-time; a bare date ``to`` means the whole of that day (UTC)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1 if end else 0), time(),
                                    tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time",
                         code="invalid_field", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _int(q, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(q.get(name, str(default)))
    except ValueError:
        raise BadRequest("limit and offset must be integers", code="invalid_field",
                         field=name) from None
    return min(max(value, low), high)


@requires("read")
async def list_uploads(request: web.Request) -> web.Response:
    """Uploads newest first, filtered; ``total`` counts every match for paging."""
    q = request.query
    limit = _int(q, "limit", 50, 1, 500)
    offset = _int(q, "offset", 0, 0, 2**63 - 1)  # past bigint: clamped, never a driver error
    status = q.get("status") or None
    if status is not None and status not in STATUSES + RETRACT_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES + RETRACT_STATUSES)}",
                         code="invalid_field", field="status")
    where = UploadFilter(status=status, route=q.get("route") or None,
                         client=visible_client(request[PRINCIPAL]),
                         program=q.get("program_name") or None,
                         ingestion_name=q.get("ingestion_name") or None,
                         filename=q.get("filename") or None,
                         since=_when(q.get("from"), "from", end=False),
                         until=_when(q.get("to"), "to", end=True))
    store = request.app[appkeys.UPLOADS]
    records = await store.list(where=where, limit=limit, offset=offset)
    return web.json_response({"uploads": [listed(response_body(r)) for r in records],
                              "limit": limit, "offset": offset,
                              "total": await store.count(where)})


def listed(body: dict[str, Any]) -> dict[str, Any]:
    """An upload in a listing: without its row errors (``GET .../uploads/{id}`` has them), so a
    page of uploads stays small whatever their files held."""
    body.pop("errors_sample", None)
    for member in body.get("members") or ():
        member.pop("errors_sample", None)
    return body


async def own_upload(request: web.Request) -> dict[str, Any]:
    """The upload named in the path, if the caller may see it; else 404 as if missing."""
    record = await request.app[appkeys.UPLOADS].get(request.match_info["id"])
    client = visible_client(request[PRINCIPAL])
    if record is None or (client is not None and record["client"] != client):
        raise NotFound(f"no upload with id '{request.match_info['id']}'", code="upload_not_found")
    return record


@requires("read")
async def get_upload(request: web.Request) -> web.Response:
    return web.json_response(response_body(await own_upload(request)))


def _object_key(record: dict[str, Any], part: str, member: str | None) -> str | None:
    if record["status"] in RETRACT_STATUSES:
        raise IngestError("this upload was retracted: its files are gone", code="upload_retracted",
                          status=410)
    if record["route"] == "national_programs":
        return _member_key(record, part, member)
    return record["objects"].get(part) if record["objects"] else None


def _member_key(record: dict[str, Any], part: str, member: str | None) -> str | None:
    """A national ZIP has one file per member and part: ``?member=<name>`` picks it, and may be
    left out when only one member has one. Matched on the recorded members, not on key text."""
    members = record.get("members") or []
    if member is None:
        having = [m for m in members if (m.get("objects") or {}).get(part)]
        if len(having) > 1:
            raise BadRequest(f"this upload has several {part} files: name one with ?member=",
                             code="member_required", members=[m["name"] for m in having])
        return having[0]["objects"][part] if having else None
    found = next((m for m in members if m["name"] == member), None)
    if found is None:
        raise NotFound(f"this upload has no member '{member}'", code="member_not_found",
                       members=[m["name"] for m in members])
    return (found.get("objects") or {}).get(part)


async def _still_its_own(request: web.Request, record: dict[str, Any], key: str) -> None:
    """410 ``object_replaced`` when a later upload replaced this key's object (the cqube layout):
    its bytes are that upload's, not this one's."""
    if key in await foreign(request.app[appkeys.POOL], publisher(record), [key]):
        by = next((r.get("by_upload_id") for r in record.get("replaced") or []
                   if r.get("key") == key), None)
        raise IngestError("a later upload of the same name on the same day replaced this file "
                          "(storage.layout = \"cqube\"): it is no longer this upload's",
                          code="object_replaced", status=410, key=key, by_upload_id=by)


async def _stream(request: web.Request, key: str, filename: str,
                  transform=None) -> web.StreamResponse:
    chunks: AsyncIterator[bytes] = request.app[appkeys.STORAGE].read(key)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'})
    body = transform(chunks) if transform else chunks
    async with contextlib.aclosing(chunks), contextlib.aclosing(body):
        first = await anext(body, None)  # a missing object still answers 404, not a cut 200
        await resp.prepare(request)
        if first is not None:
            await resp.write(first)
            async for chunk in body:
                await resp.write(chunk)
    await resp.write_eof()
    return resp


@requires("read")
async def get_upload_errors(request: web.Request) -> web.StreamResponse:
    """The full rejected-rows file, streamed from storage; ``formula_safe=true`` escapes cells a
    spreadsheet would run as formulas (the exact file is the default)."""
    record = await own_upload(request)
    key = _object_key(record, "errors", request.query.get("member"))
    if not key:
        raise NotFound("this upload has no error file (no row was rejected, or nothing was "
                       "written)", code="no_error_file")
    await _still_its_own(request, record, key)
    safe = request.query.get("formula_safe", "").lower() in TRUE
    name = f"{record['id']}.errors{'.formula-safe' if safe else ''}.csv"
    return await _stream(request, key, name, formula_safe if safe else None)


@requires("read")
async def get_upload_valid(request: web.Request) -> web.StreamResponse:
    """The valid rows as written, streamed from storage."""
    record = await own_upload(request)
    key = _object_key(record, "valid", request.query.get("member"))
    if not key:
        raise NotFound("this upload has no valid rows file (no row was valid, or nothing was "
                       "written)", code="no_valid_file")
    await _still_its_own(request, record, key)
    return await _stream(request, key, f"{record['id']}.valid.csv")


async def delete_upload(request: web.Request) -> web.Response:
    """Retract: the upload's objects are deleted, its record kept as ``retracted``. The ``ingest``
    scope retracts one's own uploads, ``admin`` anyone's. (No scope mark: either one will do.)"""
    principal = request[PRINCIPAL]
    if "admin" not in principal.scopes:
        principal.require("ingest")
    record = await own_upload(request)
    processing = request.app.get(appkeys.PROCESSING)
    done = await retract(request.app[appkeys.UPLOADS], request.app[appkeys.STORAGE], record,
                         by=principal.client, datasets=getattr(processing, "datasets", None))
    return web.json_response(response_body(done))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ingestion/uploads", list_uploads)
    app.router.add_get("/api/ingestion/uploads/{id}", get_upload)
    app.router.add_delete("/api/ingestion/uploads/{id}", delete_upload)
    app.router.add_get("/api/ingestion/uploads/{id}/errors", get_upload_errors)
    app.router.add_get("/api/ingestion/uploads/{id}/valid", get_upload_valid)
