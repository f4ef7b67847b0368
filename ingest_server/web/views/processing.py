"""The processing API (DESIGN.md §12): cQube's grammar files and programmes, registered as sent.

``PUT`` a dimension or event grammar (``text/csv``, the file unchanged) or a programme (JSON);
``GET`` each, and ``GET /api/processing/grammars`` for everything registered. Scope ``spec`` to
write, ``read`` to read. Without ``processing.enabled`` every route is a 404
``processing_disabled``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...stores.db import db_errors
from ...errors import BadRequest, NotFound
from ...processing.registry import program_json
from ...processing.grammars import parse_program
from ...processing.service import ProcessingService
from ...safejson import loads as json_loads
from .. import appkeys
from ..middleware import PRINCIPAL, requires
from ..body import read_body, read_json

MAX_GRAMMAR_BYTES = 256 * 1024
CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/octet-stream")


def _service(request: web.Request) -> ProcessingService:
    service = request.app.get(appkeys.PROCESSING)
    if service is None:
        raise NotFound("processing is not enabled (processing.enabled)", code="processing_disabled")
    return service


async def _read_csv(request: web.Request) -> str:
    if request.content_type not in CSV_TYPES:
        raise BadRequest(f"send the grammar file as text/csv, not {request.content_type}",
                         code="unsupported_media_type")
    body = await read_body(request, MAX_GRAMMAR_BYTES)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the grammar file is not UTF-8 text", code="not_text") from None


def _migrate(request: web.Request) -> bool:
    return request.query.get("migrate", "").lower() in ("1", "true", "yes")


def _answer(result: dict[str, Any], what: str) -> web.Response:
    created = result["created"]
    stored = result.get("grammar") or result.get("program")
    verb = "registered" if created else "unchanged"
    result["message"] = f"{what} {verb} (version {stored['version']})"
    return web.json_response(result, status=201 if created else 200)


@requires("spec")
async def put_dimension(request: web.Request) -> web.Response:
    service = _service(request)
    name = request.match_info["dim"]
    text = await _read_csv(request)
    result = await service.registry.register_dimension(
        name, text, migrate=_migrate(request), created_by=request[PRINCIPAL].client)
    return _answer(result, f"dimension grammar '{name}'")


@requires("spec")
async def put_event(request: web.Request) -> web.Response:
    service = _service(request)
    program, name = request.match_info["program"], request.match_info["event"]
    text = await _read_csv(request)
    result = await service.registry.register_event(program, name, text,
                                                   created_by=request[PRINCIPAL].client)
    await _datasets_created(service, program, result)
    return _answer(result, f"event grammar '{program}/{name}'")


@requires("spec")
async def put_program(request: web.Request) -> web.Response:
    service = _service(request)
    name = request.match_info["program"]
    body = await read_json(request)
    result = await service.registry.register_program(name, body,
                                                     created_by=request[PRINCIPAL].client)
    await _datasets_created(service, name, result)
    return _answer(result, f"programme '{name}'")


def _versions(versions) -> dict[str, Any]:
    latest = versions[0]
    return {"latest": latest.to_json(), "versions": [v.to_json(with_body=False)
                                                     for v in versions]}


@requires("read")
async def get_dimension(request: web.Request) -> web.Response:
    service = _service(request)
    name = request.match_info["dim"]
    versions = await service.registry.get("dimension", "", name)
    grammar = await service.registry.dimension(name)
    assert grammar is not None
    return web.json_response({"kind": "dimension", "name": name, "pk": grammar.pk,
                              "indexes": list(grammar.indexes), "key_column": grammar.key_column,
                              "columns": [vars(c) for c in grammar.columns],
                              **_versions(versions)})


@requires("read")
async def get_event(request: web.Request) -> web.Response:
    service = _service(request)
    program, name = request.match_info["program"], request.match_info["event"]
    versions = await service.registry.get("event", program, name)
    grammar = await service.registry.event(program, name)
    assert grammar is not None
    return web.json_response({"kind": "event", "program": program, "name": name,
                              "columns": [vars(c) for c in grammar.columns],
                              **_versions(versions)})


@requires("read")
async def get_program(request: web.Request) -> web.Response:
    service = _service(request)
    name = request.match_info["program"]
    versions = await service.registry.get("program", "", name)
    program = parse_program(name, json_loads(versions[0].body.encode()))
    datasets = getattr(service, "datasets", None)
    extra = {"datasets": await datasets.status(name)} if datasets is not None else {}
    return web.json_response({"kind": "program", "name": name, **program_json(program),
                              **_versions(versions), **extra})


async def _datasets_created(service: ProcessingService, program: str,
                            result: dict[str, Any]) -> None:
    """A registered event grammar or programme: its dataset tables and spec rows exist now."""
    datasets = getattr(service, "datasets", None)
    if datasets is not None:
        with db_errors():
            tables = await datasets.ensure_program(program)
        result["datasets"] = [f"datasets.{t.physical}" for t in tables]


@requires("spec")
async def rebuild_program(request: web.Request) -> web.Response:
    """Rebuild a programme's dataset tables from its landed valid files."""
    service = _service(request)
    name = request.match_info["program"]
    await service.registry.get("program", "", name)  # 404 when not registered
    datasets = getattr(service, "datasets", None)
    with db_errors():
        result = await datasets.rebuild(name)
    return web.json_response(result)


@requires("read")
async def get_upload_references(request: web.Request) -> web.Response:
    """An upload's unknown_reference errors, grouped by dimension, with distinct key counts."""
    service = _service(request)
    upload_id = request.match_info["upload_id"]
    record = await request.app[appkeys.UPLOADS].get(upload_id)
    principal = request[PRINCIPAL]
    if record is None or not ("admin" in principal.scopes or record.get("client") == principal.client):
        raise NotFound(f"no upload {upload_id!r}", code="upload_not_found")
    return web.json_response(await service.upload_references(
        dict(record), request.app[appkeys.STORAGE].read))


@requires("read")
async def list_grammars(request: web.Request) -> web.Response:
    service = _service(request)
    return web.json_response(await service.status())


def setup(app: web.Application) -> None:
    app.router.add_get("/api/processing/grammars", list_grammars)
    app.router.add_put("/api/processing/grammars/dimensions/{dim}", put_dimension)
    app.router.add_get("/api/processing/grammars/dimensions/{dim}", get_dimension)
    app.router.add_put("/api/processing/grammars/events/{program}/{event}", put_event)
    app.router.add_get("/api/processing/grammars/events/{program}/{event}", get_event)
    app.router.add_put("/api/processing/programs/{program}", put_program)
    app.router.add_get("/api/processing/programs/{program}", get_program)
    app.router.add_post("/api/processing/programs/{program}/rebuild", rebuild_program)
    app.router.add_get("/api/processing/uploads/{upload_id}/references", get_upload_references)
