"""How results are shown on stdout: rich tables for people, raw JSON (``--json``) for programs."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from .progress import human_bytes

FIRST_ERRORS = 10
WIDE = 400  # columns when stdout is not a terminal: object keys stay whole, never folded


def stdout_console(stream: TextIO | None = None) -> Console:
    stream = stream if stream is not None else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else WIDE, highlight=False)


def print_json(body: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(body, indent=2, ensure_ascii=False),
          file=stream if stream is not None else sys.stdout)


def _rows(body: dict[str, Any]) -> str:
    return (f"{body.get('total_rows', 0)} total, {body.get('valid_rows', 0)} valid, "
            f"{body.get('invalid_rows', 0)} rejected")


def _keys(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


def uploads_table(body: dict[str, Any]) -> Table:
    """One page of uploads, newest first, with where the page is in the whole listing."""
    uploads = body.get("uploads", [])
    first = body.get("offset", 0) + 1
    title = (f"uploads {first}-{first + len(uploads) - 1} of {body.get('total', len(uploads))}"
             if uploads else "no uploads match")
    table = Table(title=title, title_justify="left", box=box.SIMPLE)
    for name in ("started", "upload id", "file", "spec", "programme", "status", "valid",
                 "rejected"):
        table.add_column(name, justify="right" if name in ("valid", "rejected") else "left")
    for u in uploads:
        spec = "national ZIP" if u.get("route") == "national_programs" else \
            f"{u.get('ingestion_type')}/{u.get('ingestion_name')}"
        table.add_row(str(u.get("started_at", ""))[:19].replace("T", " "), u.get("upload_id"),
                      u.get("filename") or "", spec, u.get("program_name") or "",
                      u.get("status"), str(u.get("valid_rows", 0)),
                      str(u.get("invalid_rows", 0)))
    return table


def summary_table(body: dict[str, Any]) -> Table:
    """Status, target, counts and object keys of one upload."""
    table = Table(title=f"upload {body.get('upload_id', '?')}", title_justify="left",
                  show_header=False, box=box.SIMPLE)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # an object key is shown whole, folded if need be
    table.add_row("status", f"{body.get('status')}: {body.get('message', '')}")
    if body.get("filename"):
        size = f" ({human_bytes(body['bytes'])})" if body.get("bytes") is not None else ""
        table.add_row("file", f"{body['filename']}{size}")
    target = " ".join(str(body[k]) for k in ("ingestion_type", "ingestion_name")
                      if body.get(k))
    if target:
        program = f", program {body['program_name']}" if body.get("program_name") else ""
        version = f" (spec v{body['spec_version']})" if body.get("spec_version") else ""
        table.add_row("target", f"{target}{program}{version}")
    table.add_row("rows", _rows(body))
    objects = body.get("objects") or {}
    for label, field in (("valid rows", "valid"), ("rejected rows", "errors")):
        for key in _keys(objects.get(field)):
            table.add_row(label, key)
    if objects.get("duplicate_of"):
        table.add_row("duplicate of", str(objects["duplicate_of"]))
    error = body.get("error")
    if error:
        table.add_row("error", f"{error.get('code')}: {error.get('message')}")
    return table


def members_table(members: list[dict[str, Any]]) -> Table:
    table = Table(title="members", title_justify="left", box=box.SIMPLE)
    for col in ("name", "spec", "total", "valid", "rejected", "error"):
        table.add_column(col, justify="right" if col in ("total", "valid", "rejected") else "left")
    for m in members:
        err = m.get("error") or {}
        table.add_row(str(m.get("name")), f"v{m['spec_version']}" if m.get("spec_version") else "",
                      str(m.get("total_rows", 0)), str(m.get("valid_rows", 0)),
                      str(m.get("invalid_rows", 0)),
                      f"{err.get('code')}: {err.get('message')}" if err else "")
    return table


def errors_table(sample: list[dict[str, Any]], limit: int = FIRST_ERRORS) -> Table:
    with_member = any("member" in e for e in sample)
    table = Table(title=f"first rejected rows ({min(len(sample), limit)} of the sample)",
                  title_justify="left", box=box.SIMPLE)
    cols = (["member"] if with_member else []) + ["line", "column", "value", "code", "message"]
    for col in cols:
        table.add_column(col, justify="right" if col == "line" else "left")
    for e in sample[:limit]:
        row = [str(e.get(c, "")) if e.get(c) is not None else "" for c in cols]
        table.add_row(*row)
    return table


def show_upload(body: dict[str, Any], console: Console) -> None:
    """The result of an upload or a status query, as tables (no trailing blanks when piped)."""
    if console.is_terminal:
        _show_upload(body, console)
        return
    with console.capture() as captured:
        _show_upload(body, console)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    console.file.flush()


def _show_upload(body: dict[str, Any], console: Console) -> None:
    console.print(summary_table(body))
    if body.get("members"):
        console.print(members_table(body["members"]))
    for warning in body.get("warnings") or []:
        console.print(f"warning: {warning.get('code')}: {warning.get('message')}", markup=False)
    sample = body.get("errors_sample") or []
    if sample:
        console.print(errors_table(sample))
        if body.get("invalid_rows", 0) and body.get("objects", {}).get("errors"):
            console.print(f"all rejected rows: ingest errors {body.get('upload_id')} > errors.csv")
