"""``POST /api/ingestion/validate``: cQube's data debugger. Checks a grammar, or data against a
grammar, and writes nothing (no object, no upload record).

multipart: ``type`` (``event-grammar``, ``event-data``, ``dimension-grammar``,
``dimension-data``), ``grammar`` (a cQube spec JSON file) and, for data, ``data`` (a CSV). The
CSV streams through the same checks as an upload (dry run) when the grammar came first, else it
is spooled to disk first; it is never held whole in memory. Answer: 201 ``{"errors": [...]}``,
empty when valid; at most :data:`MAX_ERRORS` row errors are listed (``truncated`` says so), with
the row counts beside them. A grammar with a ``pattern`` is checked in the killable workers of
uploads (``csvstream.guarded``), never in this process.
Scope ``spec``, so ``auth.open_spec_api`` opens it as cQube does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from ... import safejson
from ...errors import BadRequest, FileRejected, InvalidSpec
from ...ingest.spool import file_chunks, spool
from .. import appkeys
from ..middleware import requires
from ..multipart import next_part, open_form, part_chunks
from .specs import MAX_SPEC_BYTES

TYPES = {"event-grammar": ("event", False), "event-data": ("event", True),
         "dimension-grammar": ("dimension", False), "dimension-data": ("dimension", True)}
MAX_ERRORS = 1000


class _Request:
    """What the form held, once read."""

    def __init__(self) -> None:
        self.type: str | None = None
        self.grammar: Any = None
        self.grammar_seen = False
        self.result: dict[str, Any] | None = None
        self.spooled: Path | None = None


async def _read_grammar(part, idle_s: float, limit: int = MAX_SPEC_BYTES) -> Any:
    data = bytearray()
    async for chunk in part_chunks(part, limit, idle_s):
        data += chunk
    try:  # never plain json.loads on client input: depth, numbers and surrogates bounded
        return safejson.loads(bytes(data))
    except BadRequest as e:
        raise InvalidSpec(f"the grammar is not valid JSON: {e.message}", keyword=None,
                          field=None) from None


def _spec_error(e: InvalidSpec) -> dict[str, Any]:
    return {"code": e.code, "message": e.message, **e.details}


async def _check_data(request: web.Request, kind: str, grammar: Any,
                      chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """The grammar's errors, or (when it is valid) the data's, through the upload checks."""
    service = request.app[appkeys.INGEST]
    try:
        schema = service.grammar_schema(grammar)
    except InvalidSpec as e:
        async for _ in chunks:  # the rest of the body, unread otherwise
            pass
        return {"errors": [_spec_error(e)]}
    try:
        outcome = await service.check_csv(chunks, kind=kind, name=str(grammar.get("program")),
                                          schema=schema, sample_limit=MAX_ERRORS)
    except FileRejected as e:
        return {"errors": [{"code": e.code, "message": e.message, **e.details}]}
    return {"errors": outcome.errors_sample, "total_rows": outcome.total_rows,
            "valid_rows": outcome.valid_rows, "invalid_rows": outcome.invalid_rows,
            "truncated": len(outcome.errors_sample) >= MAX_ERRORS}


def _kind(form: _Request) -> tuple[str, bool]:
    if form.type not in TYPES:
        raise BadRequest(f"type must be one of {', '.join(TYPES)}", code="invalid_field",
                         field="type", allowed=list(TYPES))
    return TYPES[form.type]


async def _read(request: web.Request, form: _Request) -> None:
    settings = request.app[appkeys.SETTINGS]
    limit, idle_s = settings.limits.max_upload_bytes, settings.limits.body_idle_timeout_s
    reader = await open_form(request, limit)
    count = [0]
    while (part := await next_part(reader, count, idle_s)) is not None:
        if part.name == "type":
            form.type = b"".join([c async for c in part_chunks(part, 64, idle_s)]).decode(
                "utf-8", "replace").strip()
        elif part.name == "grammar":
            form.grammar, form.grammar_seen = await _read_grammar(part, idle_s), True
        elif part.name == "data":
            kind, _ = _kind(form) if form.type else (None, True)
            if form.grammar_seen and kind is not None:
                form.result = await _check_data(request, kind, form.grammar,
                                                part_chunks(part, limit, idle_s))
            else:
                spool_dir = settings.path(settings.server.state_dir) / "spool"
                form.spooled = (await spool(part_chunks(part, limit, idle_s), spool_dir)).path
        else:
            await part.release()


@requires("spec")
async def validate(request: web.Request) -> web.Response:
    form = _Request()
    try:
        await _read(request, form)
        kind, with_data = _kind(form)
        if not form.grammar_seen:
            raise BadRequest("the form has no 'grammar' file", code="missing_field",
                             field="grammar")
        if with_data and form.result is None:
            if form.spooled is None:
                raise BadRequest("the form has no 'data' file", code="missing_field",
                                 field="data")
            form.result = await _check_data(request, kind, form.grammar,
                                            file_chunks(form.spooled))
        if not with_data:
            try:
                request.app[appkeys.INGEST].grammar_schema(form.grammar)
                form.result = {"errors": []}
            except InvalidSpec as e:
                form.result = {"errors": [_spec_error(e)]}
    finally:
        if form.spooled is not None:
            form.spooled.unlink(missing_ok=True)
    return web.json_response(form.result, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/ingestion/validate", validate)
