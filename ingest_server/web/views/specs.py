"""The spec API: cQube spec bodies (``POST /api/spec/{kind}``), native Cerberus schemas, listing."""

import asyncio
import re
from typing import Any

from aiohttp import web

from ...csvstream.delimiter import parse_delimiter
from ...errors import BadRequest, FileRejected, InvalidSpec
from ...plugins.loading import plugin_extensions
from ...plugins.programs import safe_name
from ...stores.specs import KINDS, Spec, posted_columns
from ...templates.files import template_file
from ...templates.infer import infer_spec
from ...workbook.sniff import HEAD_BYTES, sniff, zip_kind
from ...validation import check_cerberus_schema, translate_cqube_spec
from .. import appkeys
from ..handler import profile_handler
from ..middleware import PRINCIPAL, requires
from ..body import SMALL_BODY_BYTES, read_json
from ..multipart import open_upload_form

MAX_SPEC_BYTES = SMALL_BODY_BYTES
# A page of versions: summaries are small; with their schema and body (up to MAX_SPEC_BYTES each,
# more once translated) a page is kept to a few, so one answer stays a few MiB at most.
PAGE = {False: (50, 100), True: (5, 5)}  # with_schema -> (default, most)


def _extensions(request: web.Request):
    return plugin_extensions(request.app[appkeys.REGISTRY].plugins_dir)


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in KINDS:
        raise BadRequest(f"unknown spec kind '{kind}' (expected one of {', '.join(KINDS)})",
                         code="unknown_kind", kind=kind)
    return kind


async def _register(request: web.Request, *, kind: str, name: str, cerberus: dict,
                    source: Any, source_format: str) -> tuple[Spec, bool]:
    return await request.app[appkeys.SPECS].register(
        kind=kind, name=name, cerberus=cerberus, source=source, source_format=source_format,
        created_by=request[PRINCIPAL].client, columns=posted_columns(cerberus, source),
        per_day=request.app[appkeys.SETTINGS].quotas.spec_versions_per_day)


def _registered(spec: Spec, created: bool) -> web.Response:
    verb = "created" if created else "unchanged"
    body = {"message": f"{spec.kind.capitalize()} spec '{spec.name}' {verb} "
                       f"(version {spec.version})", "created": created, "spec": spec.to_json()}
    return web.json_response(body, status=201 if created else 200)


async def register_cqube_spec(request: web.Request) -> tuple[Spec, bool]:
    """Register the request's cQube spec body ``{"program": name, "input": {...}}``: the spec
    and whether it is a new version (else the latest one was the same)."""
    kind = _kind(request)
    body = await read_json(request, MAX_SPEC_BYTES)
    if not isinstance(body, dict):
        raise InvalidSpec("the spec must be a JSON object", keyword=None, field=None)
    cerberus = translate_cqube_spec(body, _extensions(request))
    name = safe_name(body.get("program"), "program")
    return await _register(request, kind=kind, name=name, cerberus=cerberus, source=body,
                           source_format="cqube")


@requires("spec")
async def post_cqube_spec(request: web.Request) -> web.Response:
    """Register a cQube spec body ``{"program": name, "input": {...}}``."""
    return _registered(*await register_cqube_spec(request))


@requires("spec")
async def put_cerberus_spec(request: web.Request) -> web.Response:
    """Register a native Cerberus schema ``{"cerberus": {...}}`` under a kind and a name."""
    kind = _kind(request)
    name = safe_name(request.match_info["name"], "name")
    body = await read_json(request, MAX_SPEC_BYTES)
    if not isinstance(body, dict) or set(body) != {"cerberus"} or not isinstance(body["cerberus"], dict):
        raise InvalidSpec('the body must be {"cerberus": {<field>: {<rules>}}}', keyword=None,
                          field=None)
    check_cerberus_schema(body["cerberus"], _extensions(request))
    return _registered(*await _register(request, kind=kind, name=name, cerberus=body["cerberus"],
                                        source=None, source_format="cerberus"))


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


@requires("read")
async def get_template(request: web.Request) -> web.Response:
    """The file to fill in for a spec: its header in the spec's order (``format=csv|xlsx``;
    ``example=true`` adds a row that lands)."""
    kind = _kind(request)
    fmt = request.query.get("format", "csv").lower()
    if fmt not in ("csv", "xlsx"):
        raise BadRequest("format must be csv or xlsx", code="invalid_field", field="format")
    example = request.query.get("example", "").lower() in ("1", "true", "yes")
    spec = await request.app[appkeys.SPECS].latest(kind, request.match_info["name"])
    body, content_type, filename = await asyncio.to_thread(
        template_file, spec, fmt, example, request.app[appkeys.REGISTRY].plugins_dir)
    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def _draft_name(filename: str) -> str:
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:200]
    return name if name and name[0].isalnum() else "draft"


@requires("read")
async def infer(request: web.Request) -> web.Response:
    """A cQube spec draft from a sample file (multipart ``file``, ``kind``; optional ``name``,
    ``sheet``, ``encoding``, ``delimiter``), with per-column evidence. Nothing is stored."""
    async with await open_upload_form(request) as upload:
        await upload.until_file()
        form = await upload.spool_rest()
        q = request.query
        kind = form.get("kind", q) or "event"
        if kind not in KINDS:
            raise BadRequest(f"unknown spec kind '{kind}' (expected one of {', '.join(KINDS)})",
                             code="unknown_kind", kind=kind)
        name = safe_name(form.get("name", q) or _draft_name(form.filename), "name")
        assert form.spooled is not None
        container = sniff(await asyncio.to_thread(_head, form.spooled))
        workbook = None
        if container == "ole2":
            workbook = "xls"
        elif container == "zip":
            workbook = await asyncio.to_thread(zip_kind, form.spooled)
            if workbook is None:
                raise FileRejected("this is a ZIP archive, not a CSV file or a workbook",
                                   code="not_a_csv")
        result = await asyncio.to_thread(
            infer_spec, form.spooled, workbook, name=name, sheet=form.get("sheet", q) or None,
            encoding=form.get("encoding", q) or None,
            delimiter=parse_delimiter(form.get("delimiter", q)),
            max_cells=request.app[appkeys.SETTINGS].limits.max_workbook_cells)
    translate_cqube_spec(result["spec"], _extensions(request))  # the draft registers as it is
    return web.json_response({"kind": kind, "name": name, "source": form.filename, **result})


def _head(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/spec/{kind}", profile_handler(app, post_cqube_spec))
    app.router.add_get("/api/specs", list_specs)
    app.router.add_post("/api/specs/infer", infer)
    app.router.add_get("/api/specs/{kind}/{name}", get_spec)
    app.router.add_put("/api/specs/{kind}/{name}", put_cerberus_spec)
    app.router.add_get("/api/specs/{kind}/{name}/template", get_template)
