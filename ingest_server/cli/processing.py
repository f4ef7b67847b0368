"""``ingest processing``: register a cQube grammar folder, show what processing holds.

``import DIR`` reads a cQube ``ingest/VSK`` (or ``NVSK``) folder as cQube's processing does
(CQUBE-PROCESSING.md §1.1-1.2): ``config.json``, ``dimensions/*-dimension.grammar.csv``, and for
each programme of the config ``programs/<folder>/*-event.grammar.csv``; with ``--data`` also
each ``<dim>-dimension.data.csv`` beside its grammar, uploaded as a dimension file (loaded into
its table by the server).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from .failures import EXIT_REJECTED, ApiError, CliError
from .render import print_json

DIMENSION = re.compile(r"-dimension\.grammar\.csv$", re.IGNORECASE)
EVENT = re.compile(r"-event\.grammar\.csv$", re.IGNORECASE)


def grammar_name(path: Path) -> str:
    """cQube's name of a grammar file: the base name before the first ``.`` or ``-``."""
    return re.split(r"[.-]", path.name, maxsplit=1)[0]


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"processing import: {path} not found (a cQube ingest/VSK folder has "
                       "config.json)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise CliError(f"processing import: {path}: not JSON: {e}") from None
    if not isinstance(config, dict):
        raise CliError(f"processing import: {path}: not a JSON object")
    return config


def _folder(folder: Path, configured: Any, default: str) -> Path:
    """A configured ``input.files`` (``./ingest/VSK/programs/x``): its last part, in DIR."""
    name = Path(configured).name if isinstance(configured, str) and configured else default
    return folder / name


def plan(folder: Path) -> tuple[list[Path], list[tuple[str, dict[str, Any], list[Path]]],
                                list[str]]:
    """(dimension grammars, [(programme folder, config entry, event grammars)], skipped)."""
    config = read_config(folder)
    dims_dir = _folder(folder, ((config.get("dimensions") or {}).get("input") or {})
                       .get("files"), "dimensions")
    dims = sorted(p for p in dims_dir.glob("*") if DIMENSION.search(p.name))
    programs = []
    configured = set()
    for entry in config.get("programs") or []:
        if not isinstance(entry, dict):
            continue
        where = _folder(folder / "programs", (entry.get("input") or {}).get("files"),
                        str(entry.get("name", "")))
        configured.add(where.name)
        events = sorted(p for p in where.glob("*") if EVENT.search(p.name))
        programs.append((where.name, entry, events))
    skipped = sorted(p.name for p in (folder / "programs").glob("*")
                     if p.is_dir() and p.name not in configured)
    return dims, programs, skipped


def run_import(client: Any, folder: Path, *, migrate: bool, data: bool,
               echo=click.echo) -> int:
    """Register everything in ``folder``; the number of files that failed."""
    dims, programs, skipped = plan(folder)
    failed = 0

    def attempt(label: str, call) -> Any:
        nonlocal failed
        try:
            answer = call()
        except ApiError as e:
            if e.is_auth or e.is_server_fault:
                raise
            failed += 1
            echo(f"ingest: {label}: {e.code}: {e.message}", err=True)
            return None
        echo(f"{label}: {answer.get('message', 'done')}")
        return answer

    params = {"migrate": "true"} if migrate else {}
    for path in dims:
        name = grammar_name(path)
        attempt(str(path), lambda: client.put_grammar(
            f"dimensions/{quote(name, safe='')}", path.read_text(encoding="utf-8"), params))
    for program, entry, events in programs:
        body = {"namespace": entry.get("namespace"),
                "whitelisted": ((entry.get("dimensions") or {}).get("whitelisted") or [])}
        attempt(f"programme {program}", lambda: client.put_program(program, body))
        for path in events:
            name = grammar_name(path)
            attempt(str(path), lambda: client.put_grammar(
                f"events/{quote(program, safe='')}/{quote(name, safe='')}",
                path.read_text(encoding="utf-8")))
    if data:
        for path in dims:
            data_file = path.with_name(path.name.replace("grammar", "data", 1))
            if data_file.is_file():
                fields = {"ingestion_type": "dimension", "ingestion_name": grammar_name(path)}
                answer = attempt(str(data_file), lambda: client.upload(
                    data_file, route="new_programs", fields=fields, content_type="text/csv"))
                if answer is not None and answer.get("status") != "uploaded":
                    failed += 1
    for name in skipped:
        echo(f"programs/{name}: not in config.json, skipped (cQube never processes it)")
    return failed


@click.group()
def processing() -> None:
    """cQube processing: grammars, dimension tables, key checks."""


@processing.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--migrate", is_flag=True, help="Alter dimension tables whose grammar changed.")
@click.option("--data", is_flag=True,
              help="Also upload each <dim>-dimension.data.csv found beside its grammar.")
@click.pass_obj
def import_folder(opts: Any, folder: Path, migrate: bool, data: bool) -> None:
    """Register a cQube ingest/VSK folder: config.json, dimension and event grammars."""
    try:
        with opts.client() as client:
            failed = run_import(client, folder, migrate=migrate, data=data)
    except ApiError as e:
        raise CliError(f"processing import failed: {e.message}") from None
    if failed:
        raise CliError(f"processing import: {failed} file(s) failed", exit_code=EXIT_REJECTED)


@processing.command("status")
@click.argument("upload_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
@click.pass_obj
def status(opts: Any, upload_id: str | None, as_json: bool) -> None:
    """Grammars, dimension rows and last loads; with UPLOAD_ID, that upload's unknown keys
    grouped by dimension."""
    try:
        with opts.client() as client:
            body = (client.upload_references(upload_id) if upload_id
                    else client.processing_status())
    except ApiError as e:
        raise CliError(f"processing status failed: {e.message}") from None
    if as_json:
        print_json(body)
    elif upload_id:
        groups = body["unknown_references"]
        if not groups:
            click.echo(f"upload {upload_id}: no unknown keys")
        for g in groups:
            at_least = "at least " if g["distinct_keys_at_least"] else ""
            click.echo(f"{g['dimension']} ({g['column']}): {g['rows']} rows, {at_least}"
                       f"{g['distinct_keys']} distinct unknown keys, e.g. "
                       f"{', '.join(repr(k) for k in g['examples'])}")
    else:
        for d in body["dimensions"]:
            last = d["last_load"]
            when = f"last load {last['loaded_at']} ({last['rows']} rows)" if last else "never loaded"
            click.echo(f"dimension {d['name']}: {d['rows']} rows, key {d['key_column']}, {when}")
        for e in body["events"]:
            links = ", ".join(f"{x['column']}->{x['dimension']}" for x in e["dimensions"])
            click.echo(f"event {e['program']}/{e['name']} v{e['version']}: metric "
                       f"{e['metric']}; {links}")
        for p in body["programs"]:
            click.echo(f"programme {p['name']} v{p['version']}: {p['body']}")


@processing.command("rebuild")
@click.argument("program")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
@click.pass_obj
def rebuild(opts: Any, program: str, as_json: bool) -> None:
    """Rebuild PROGRAM's dataset tables from its landed, unretracted event uploads."""
    try:
        with opts.client() as client:
            body = client.rebuild_program(program)
    except ApiError as e:
        raise CliError(f"processing rebuild failed: {e.message}") from None
    if as_json:
        print_json(body)
    else:
        click.echo(f"programme {body['program']}: {body['uploads']} upload(s) applied again to "
                   f"{body['tables']} dataset table(s), {body['groups']} group(s)")
