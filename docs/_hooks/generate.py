"""mkdocs hook: the reference pages are generated from the code, never copied by hand.

A page asks for a generated part with a marker line ``<!-- generated: NAME -->``:

- ``openapi``: every operation of the OpenAPI document (``ingest_server.web.openapi``), with its
  parameters, body and answers (and their error codes), then the schemas it uses;
- ``config``: every key of the config dataclasses (``ingest_server.config``) with its type,
  default and environment variable, described by its comment in ``config.toml``;
- ``hooks``: every hook of ``ingest_server.plugins.hookspecs`` with its arguments and docstring.

An unknown marker stops the build. The nav may name pages that other work adds later
(:data:`OPTIONAL_PAGES`): those are left out of the nav while their file does not exist, so the
strict build stays green before they land.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs` run from a venv without the editable install
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- generated: (\w+) -->$", re.M)
# Pages in mkdocs.yml's nav that other changes are adding; absent files are dropped from the nav.
OPTIONAL_PAGES = {"processing.md", "datasets.md", "upgrading.md", "files.md"}


# -- mkdocs events --------------------------------------------------------------------------------

def on_config(config, **_):
    docs = Path(config["docs_dir"])
    config["nav"] = _prune(config["nav"], docs)
    return config


def on_page_markdown(markdown: str, page, **_) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated part {name!r} "
                             f"(known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()
    return MARKER.sub(fill, markdown)


def _prune(nav: list, docs: Path) -> list:
    out = []
    for item in nav:
        if isinstance(item, dict):
            (title, target), = item.items()
            if isinstance(target, list):
                target = _prune(target, docs)
                if target:
                    out.append({title: target})
                continue
            if target in OPTIONAL_PAGES and not (docs / target).is_file():
                continue
        elif isinstance(item, str) and item in OPTIONAL_PAGES and not (docs / item).is_file():
            continue
        out.append(item)
    return out


# -- small Markdown helpers -----------------------------------------------------------------------

def cell(text: Any) -> str:
    """Text for one table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- openapi --------------------------------------------------------------------------------------

def schema_type(schema: dict[str, Any]) -> str:
    """A short type text for a JSON schema, linking named schemas to their section."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#schema-{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(schema_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"list of {schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return f"{kind}: " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return kind


def _content_line(content: dict[str, Any]) -> str:
    parts = []
    for media, body in content.items():
        schema = body.get("schema")
        parts.append(f"`{media}`" + (f": {schema_type(schema)}" if schema else ""))
    return "; ".join(parts)


def openapi_markdown() -> str:
    from ingest_server.web.openapi.document import build_document

    doc = build_document()
    out = [f"The OpenAPI {doc['openapi']} document of ingest-server {doc['info']['version']}, "
           "as `GET /api/openapi.json` serves it (and `GET /api/docs` shows it with Swagger UI)."]
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    tags = [t["name"] for t in doc.get("tags", [])] + sorted(set(by_tag) - {
        t["name"] for t in doc.get("tags", [])})
    out.append(table(["method", "path", "what"], [
        [method.upper(), f"[`{path}`](#op-{op['operationId']})", op.get("summary", "")]
        for tag in tags for method, path, op in by_tag.get(tag, [])]))
    for tag in tags:
        if tag not in by_tag:
            continue
        out.append(f"## {tag.capitalize()}")
        for method, path, op in by_tag[tag]:
            out.append(f"### {method.upper()} `{path}` {{#op-{op['operationId']}}}")
            out.append(f"**{op.get('summary', '')}**")
            if op.get("description"):
                out.append(op["description"])
            security = op.get("security")
            if security is not None:
                names = sorted({name for entry in security for name in entry})
                out.append("Authentication: " + (", ".join(f"`{n}`" for n in names) or "none"))
            params = op.get("parameters", [])
            if params:
                out.append(table(["parameter", "in", "required", "type", "what"], [
                    [f"`{p['name']}`", p["in"], "yes" if p.get("required") else "no",
                     schema_type(p.get("schema", {})), p.get("description", "")]
                    for p in params]))
            body = op.get("requestBody")
            if body:
                out.append("Body: " + _content_line(body.get("content", {})))
            rows = []
            for status, answer in op.get("responses", {}).items():
                what = answer.get("description", "")
                if answer.get("content"):
                    what += " — " + _content_line(answer["content"])
                rows.append([status, what])
            out.append(table(["status", "answer"], rows))
    out.append("## Schemas")
    for name, schema in doc["components"]["schemas"].items():
        out.append(f"### {name} {{#schema-{name.lower()}}}")
        if schema.get("description"):
            out.append(schema["description"])
        props = schema.get("properties")
        if props:
            required = set(schema.get("required", []))
            out.append(table(["field", "type", "required", "what"], [
                [f"`{k}`", schema_type(v), "yes" if k in required else "no",
                 v.get("description", "")] for k, v in props.items()]))
        else:
            out.append(f"Type: {schema_type(schema)}")
    return "\n\n".join(out) + "\n"


# -- config ---------------------------------------------------------------------------------------

def config_comments(path: Path = ROOT / "config.toml") -> dict[str, str]:
    """``section.key`` → the comment at the end of its line in config.toml."""
    comments: dict[str, str] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        head = re.match(r"^\[(\w+)\]", line)
        if head:
            section = head.group(1)
            continue
        item = re.match(r"^(\w+)\s*=\s*(\"[^\"]*\"|[^#]*?)\s*(?:#\s*(.*))?$", line)
        if item and section:
            comments[f"{section}.{item.group(1)}"] = item.group(3) or ""
    return comments


def type_name(t: Any) -> str:
    if typing.get_origin(t) is tuple:
        inner = typing.get_args(t)[0]
        return f"list of {type_name(inner)}"
    return getattr(t, "__name__", str(t))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, int) and value >= 1024**2 and value % 1024**2 == 0:
        unit = "GiB" if value % 1024**3 == 0 else "MiB"
        return f"{value} ({value // (1024**3 if unit == 'GiB' else 1024**2)} {unit})"
    return str(value)


def config_markdown() -> str:
    from ingest_server.config import ENV_PREFIX, SECTIONS, ClientConfig

    comments = config_comments()
    out = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        rows = []
        for f in fields(cls):
            if f.default is not MISSING:
                default = f.default
            else:
                default = f.default_factory() if f.default_factory is not MISSING else None
            env = f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"
            if section == "auth" and f.name == "clients":
                rows.append(["`clients`", "list of tables (below)", "none",
                             f"`{env}` (JSON list)", "clients that may get tokens"])
                continue
            rows.append([f"`{f.name}`", type_name(hints[f.name]), f"`{toml_value(default)}`",
                         f"`{env}`", comments.get(f"{section}.{f.name}", "")])
        out.append(f"## `[{section}]`")
        out.append(table(["key", "type", "default", "environment", "what"], rows))
        if section == "auth":
            hints = typing.get_type_hints(ClientConfig)
            out.append("### `[[auth.clients]]`")
            out.append(table(["key", "type", "default"], [
                [f"`{f.name}`", type_name(hints[f.name]),
                 "required" if f.default is MISSING else f"`{toml_value(f.default)}`"]
                for f in fields(ClientConfig)]))
    return "\n\n".join(out) + "\n"


# -- hooks ----------------------------------------------------------------------------------------

def hooks_markdown() -> str:
    from ingest_server.plugins import hookspecs

    out = []
    for name in _declaration_order(hookspecs):
        func = getattr(hookspecs, name)
        opts = getattr(func, "ingest_server_spec")
        args = ", ".join(inspect.signature(func).parameters)
        out.append(f"### `{name}({args})`")
        if opts.get("firstresult"):
            out.append("*firstresult*: the first implementation that returns something other "
                       "than `None` wins; the others are not called.")
        out.append(inspect.getdoc(func) or "")
    return "\n\n".join(out) + "\n"


def _declaration_order(module) -> list[str]:
    return [name for name, func in vars(module).items()
            if inspect.isfunction(func) and hasattr(func, "ingest_server_spec")]


GENERATORS = {"openapi": openapi_markdown, "config": config_markdown, "hooks": hooks_markdown}
