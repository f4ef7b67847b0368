"""The spec API: cQube spec bodies (``POST /api/spec/{kind}``), native Cerberus schemas, listing."""

from typing import Any

from aiohttp import web

from ... import safejson
from ...errors import BadRequest, InvalidSpec
from ...plugins import plugin_extensions
from ...programs import safe_name
from ...specs import KINDS
from ...validation import check_cerberus_schema, translate_cqube_spec
from .. import appkeys
from ..cqube import handler_for, is_cqube
from ..middleware import PRINCIPAL, requires

MAX_SPEC_BYTES = 1024 * 1024
# A page of versions: summaries are small; with their schema and body (up to MAX_SPEC_BYTES each,
# more once translated) a page is kept to a few, so one answer stays a few MiB at most.
PAGE = {False: (50, 100), True: (5, 5)}  # with_schema -> (default, most)


async def read_json(request: web.Request, limit: int = MAX_SPEC_BYTES) -> Any:
    """The JSON body, refusing anything over ``limit`` bytes without reading it all."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(f"body is larger than {limit} bytes", code="body_too_large", status=413)
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"body is larger than {limit} bytes", code="body_too_large",
                             status=413)
    return safejson.loads(bytes(body))


def _extensions(request: web.Request):
    return plugin_extensions(request.app[appkeys.REGISTRY].plugins_dir)


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in KINDS:
        raise BadRequest(f"unknown spec kind '{kind}' (expected one of {', '.join(KINDS)})",
                         code="unknown_kind", kind=kind)
    return kind


async def _store(request: web.Request, *, kind: str, name: str, cerberus: dict, source: Any,
                 source_format: str) -> web.Response:
    principal = request[PRINCIPAL]
    spec, created = await request.app[appkeys.SPECS].register(
        kind=kind, name=name, cerberus=cerberus, source=source, source_format=source_format,
        created_by=principal.client,
        per_day=request.app[appkeys.SETTINGS].quotas.spec_versions_per_day)
    verb = "created" if created else "unchanged"
    body = {"message": f"{kind.capitalize()} spec '{name}' {verb} (version {spec.version})",
            "created": created, "spec": spec.to_json()}
    return web.json_response(body, status=201 if created else 200)


@requires("spec")
async def post_cqube_spec(request: web.Request) -> web.Response:
    """Register a cQube spec body ``{"program": name, "input": {...}}``."""
    kind = _kind(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidSpec("the spec must be a JSON object", keyword=None, field=None)
    cerberus = translate_cqube_spec(body, _extensions(request))
    name = safe_name(body.get("program"), "program")
    return await _store(request, kind=kind, name=name, cerberus=cerberus, source=body,
                        source_format="cqube")


@requires("spec")
async def put_cerberus_spec(request: web.Request) -> web.Response:
    """Register a native Cerberus schema ``{"cerberus": {...}}`` under a kind and a name."""
    kind = _kind(request)
    name = safe_name(request.match_info["name"], "name")
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) != {"cerberus"} or not isinstance(body["cerberus"], dict):
        raise InvalidSpec('the body must be {"cerberus": {<field>: {<rules>}}}', keyword=None,
                          field=None)
    check_cerberus_schema(body["cerberus"], _extensions(request))
    return await _store(request, kind=kind, name=name, cerberus=body["cerberus"], source=None,
                        source_format="cerberus")


@requires("read")
async def list_specs(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequest(f"unknown spec kind '{kind}'", code="unknown_kind", kind=kind)
    specs = await request.app[appkeys.SPECS].list_latest(kind)
    return web.json_response({"specs": [s.to_json(with_schema=False) for s in specs]})


def _positive(request: web.Request, name: str, default: int | None, most: int) -> int | None:
    value = request.query.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= most):
        raise BadRequest(f"{name} must be a whole number from 1 to {most}", code="invalid_field",
                         field=name, most=most)
    return int(value)


@requires("read")
async def get_spec(request: web.Request) -> web.Response:
    """The latest version in full and one page of versions, newest first: ``limit`` of them
    (``schemas=true``: with their schema and body, at most 5) older than ``before``;
    ``next_before`` asks for the next page (null on the last)."""
    kind = _kind(request)
    store = request.app[appkeys.SPECS]
    schemas = request.query.get("schemas", "").lower() in ("1", "true", "yes")  # console diffs
    default, most = PAGE[schemas]
    limit = _positive(request, "limit", default, most)
    before = _positive(request, "before", None, 2**31 - 1)
    latest = await store.latest(kind, request.match_info["name"])
    versions = await store.versions(kind, latest.name, limit=limit + 1, before=before,
                                    with_schema=schemas)
    more = len(versions) > limit
    versions = versions[:limit]
    return web.json_response({"kind": kind, "name": latest.name, "latest": latest.to_json(),
                              "versions": [v.to_json(with_schema=schemas) for v in versions],
                              "next_before": versions[-1].version if more else None})


def setup(app: web.Application) -> None:
    if is_cqube(app):  # cQube's spec service has /schedule beside /event, /dimension, /dataset
        from ..cqube import schedule  # noqa: PLC0415 — only the cqube profile loads it

        schedule.setup(app)
    app.router.add_post("/api/spec/{kind}", handler_for(app, "post_cqube_spec", post_cqube_spec))
    app.router.add_get("/api/specs", list_specs)
    app.router.add_get("/api/specs/{kind}/{name}", get_spec)
    app.router.add_put("/api/specs/{kind}/{name}", put_cerberus_spec)
