"""The ``ingest`` command: get a token, push specs, upload files, follow uploads.

Exit codes (a contract for scripts, see ``errors.py``): 0 done, 1 the server rejected the data,
2 usage, configuration, authentication, network or server error. Every failure is one line on
stderr, ``ingest: <what>: <code>: <message>``; no traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from .. import __version__
from ..errors import REQUEST_CODES as SERVER_REQUEST_CODES
from .client import IngestClient
from .config import resolve_config
from .failures import EXIT_ERROR, EXIT_REJECTED, ApiError, CliError
from .processing import processing
from .progress import reporter_for
from .resumable import THRESHOLD_BYTES, upload_resumable
from .render import print_json, show_upload, stdout_console, uploads_table
from .specfiles import KINDS, read_spec_file

# 4xx codes about the request rather than the data: fixing the command line, not the file, helps
# (from ingest_server.errors; http_<status> names an answer without a JSON error).
REQUEST_CODES = SERVER_REQUEST_CODES | {"http_404", "http_405"}
CREDENTIALS_HINT = (" (give --client-id and --client-secret, INGEST_CLIENT_ID and "
                    "INGEST_CLIENT_SECRET, or a config file)")


@dataclass(frozen=True)
class Options:
    """The group's options, resolved into a config only when a command needs the server."""

    url: str | None
    client_id: str | None
    client_secret: str | None
    token: str | None
    config_path: Path | None
    timeout_s: float

    def client(self) -> IngestClient:
        return IngestClient(resolve_config(
            url=self.url, client_id=self.client_id, client_secret=self.client_secret,
            token=self.token, config_path=self.config_path, timeout_s=self.timeout_s))


def describe(action: str, e: ApiError) -> CliError:
    """One line for a server error, with the exit code scripts rely on."""
    if e.is_auth:
        hint = CREDENTIALS_HINT if e.code == "missing_credentials" else ""
        return CliError(f"authentication failed: {e.message}{hint}")
    flag = FLAGS.get(str((e.details or {}).get("field")))
    return CliError(f"{action} failed: {e.message}" + (f" (option {flag})" if flag else ""))


# The upload form's fields as this command's options, so a refusal names what to type.
FLAGS = {"program_name": "--program", "ingestion_name": "--name", "ingestion_type": "--type",
         "max_error_rate": "--max-error-rate", "encoding": "--encoding",
         "delimiter": "--delimiter", "sheet": "--sheet", "dry_run": "--dry-run"}


def reports(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn a command's ApiError into its one-line CliError, named after the command."""

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except ApiError as e:
                raise describe(action, e) from None

        return run

    return wrap


class IngestGroup(click.Group):
    """Reports every CliError as one line on stderr and exits with its code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as e:
            click.echo(f"ingest: {e.message}", err=True)
            ctx.exit(e.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors, --help, ^C at a prompt: click reports them itself
        except KeyboardInterrupt:
            click.echo("ingest: interrupted", err=True)
            ctx.exit(130)
        except Exception as e:
            # A bug in the client: still one line, unless asked for the traceback.
            if os.environ.get("INGEST_DEBUG"):
                raise
            click.echo(f"ingest: internal error: {e.__class__.__name__}: {e} "
                       "(INGEST_DEBUG=1 shows the traceback)", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=IngestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="INGEST_URL", metavar="URL",
              help="Server URL [env INGEST_URL; default http://127.0.0.1:8080].")
@click.option("--client-id", envvar="INGEST_CLIENT_ID", help="Client id [env INGEST_CLIENT_ID].")
@click.option("--client-secret", envvar="INGEST_CLIENT_SECRET",
              help="Client secret [env INGEST_CLIENT_SECRET].")
@click.option("--token", envvar="INGEST_TOKEN",
              help="A bearer token to use instead of credentials [env INGEST_TOKEN].")
@click.option("--config", "config_path", envvar="INGEST_CLI_CONFIG",
              type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file with url, client_id, client_secret [env INGEST_CLI_CONFIG; "
                   "default ~/.config/ingest/config.toml].")
@click.option("--timeout", "timeout_s", envvar="INGEST_TIMEOUT", type=float, default=300.0,
              show_default=True, help="Seconds to wait for the server.")
@click.version_option(__version__, prog_name="ingest")
@click.pass_context
def cli(ctx: click.Context, url, client_id, client_secret, token, config_path, timeout_s) -> None:
    """Client of ingest-server: tokens, specs, uploads and their status."""
    ctx.obj = Options(url, client_id, client_secret, token, config_path, timeout_s)


@cli.command()
@click.pass_obj
@reports("token")
def token(opts: Options) -> None:
    """Print a new bearer token (export TOKEN=$(ingest token))."""
    with opts.client() as client:
        click.echo(client.fetch_token()["token"])


@cli.group()
def spec() -> None:
    """Register specs."""


@spec.command("push")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS),
              help="Spec kind [default: dimension for files under a dimensions/ folder, "
                   "else event].")
@click.option("--name", help="Name of a Cerberus schema [default: the file name without .json].")
@click.pass_obj
@reports("spec push")
def spec_push(opts: Options, files: tuple[Path, ...], kind: str | None, name: str | None) -> None:
    """Register cQube spec files ({"program", "input"}) or Cerberus schemas ({"cerberus"})."""
    if name is not None and len(files) > 1:
        raise click.UsageError("--name applies to one file only")
    failed = 0
    with opts.client() as client:
        for path in files:
            try:
                spec_file = read_spec_file(path, kind=kind, name=name)
                if spec_file.format == "cqube":
                    answer = client.post_cqube_spec(spec_file.kind, spec_file.body)
                else:
                    answer = client.put_cerberus_spec(spec_file.kind, spec_file.name,
                                                      spec_file.body)
            except ApiError as e:
                if e.is_auth or e.is_server_fault:
                    raise  # no other file would fare better
                failed += 1
                click.echo(f"ingest: {path}: error {e.message}", err=True)
                continue
            except CliError as e:
                failed += 1
                click.echo(f"ingest: {path}: {e.message}", err=True)
                continue
            s = answer["spec"]
            verb = "created" if answer.get("created") else "unchanged"
            click.echo(f"{path}: {s['kind']} spec '{s['name']}' {verb} v{s['version']}")
    if failed:
        raise CliError(f"spec push: {failed} of {len(files)} files failed")


@spec.command("infer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), default="event", show_default=True,
              help="Spec kind.")
@click.option("--name", help="The spec's program name [default: the file name].")
@click.option("--sheet", help="The sheet of a workbook [default: its only one].")
@click.option("--delimiter", help="The CSV's delimiter: , ; tab | [default: from the header].")
@click.option("--encoding", help="Text encoding [default: a BOM's, else UTF-8].")
@click.option("--evidence", is_flag=True, help="Print the whole answer (the draft and, per "
                                               "column, blanks, distinct values, examples).")
@click.pass_obj
@reports("spec infer")
def spec_infer(opts: Options, file: Path, kind: str, name: str | None, sheet: str | None,
               delimiter: str | None, encoding: str | None, evidence: bool) -> None:
    """A cQube spec draft from a sample CSV or workbook, printed as JSON: edit it, then
    `ingest spec push` it."""
    fields = {"kind": kind, **{k: v for k, v in (("name", name), ("sheet", sheet),
                                                  ("delimiter", delimiter),
                                                  ("encoding", encoding)) if v}}
    with opts.client() as client:
        answer = client.infer_spec(file, fields)
    click.echo(json.dumps(answer if evidence else answer["spec"], indent=2, ensure_ascii=False))
    for column, ev in answer["evidence"].items():
        click.echo(f"{column}: {ev['type']}, {ev['blank']} blank, {ev['distinct']} distinct"
                   + (f", e.g. {', '.join(ev['examples'])}" if ev["examples"] else ""), err=True)


NEEDS_PROGRAM = ("event", "dataset")  # the built-in types that need program_name


def _upload_fields(path: Path, kind: str | None, name: str | None,
                   program: str | None) -> tuple[str, dict[str, str], str]:
    """The route, the form fields and the content type of one file."""
    if path.suffix.lower() == ".zip":
        if kind or name or program:
            raise click.UsageError("--type, --name and --program do not apply to a .zip "
                                   "(each member <name>.csv goes to the event spec <name>)")
        return "national_programs", {}, "application/zip"
    fields = {"ingestion_type": kind or "event", "ingestion_name": name or path.stem}
    if program:
        fields["program_name"] = program
    elif fields["ingestion_type"] in NEEDS_PROGRAM:  # said before the body is sent
        raise click.UsageError(f"--program is required for --type {fields['ingestion_type']} "
                               "(the programme folder its rows land in)")
    workbook = path.suffix.lower() in (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
    return "new_programs", fields, "application/octet-stream" if workbook else "text/csv"


def _is_data_rejection(e: ApiError) -> bool:
    return 400 <= e.status < 500 and not (e.is_auth or e.is_server_fault) \
        and e.code not in REQUEST_CODES


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "kind", type=click.Choice(KINDS),
              help="Ingestion type of a CSV [default: event].")
@click.option("--name", help="Ingestion name: the spec's program [default: the file name].")
@click.option("--program", help="Program name (output folder); not needed for dimensions.")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--max-error-rate", type=click.FloatRange(0, 1),
              help="Reject the whole file above this share of bad rows.")
@click.option("--encoding", help="Text encoding of the file [server default: a BOM's, else "
                                 "UTF-8].")
@click.option("--delimiter", help="The CSV's delimiter: , ; tab | [server default: found from "
                                  "the header].")
@click.option("--sheet", help="The sheet of a workbook (.xlsx, .xls, .ods) [default: its only "
                              "one].")
@click.option("--idempotency-key", help="Send again safely: the same key returns the first result.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
@click.option("--no-progress", is_flag=True, help="No progress on stderr.")
@click.option("--resumable/--one-shot", default=None,
              help="tus upload that a second run of the same command resumes after Ctrl-C or "
                   "a dropped connection [default: resumable from 64 MiB].")
@click.pass_obj
@reports("upload")
def upload(opts: Options, file: Path, kind, name, program, dry_run, max_error_rate, encoding,
           delimiter, sheet, idempotency_key, as_json, no_progress, resumable) -> None:
    """Upload a CSV or a workbook (state programme) or a ZIP (national programme), streamed
    from disk."""
    route, fields, content_type = _upload_fields(file, kind, name, program)
    if resumable and idempotency_key:
        raise click.UsageError("--idempotency-key applies to one-shot uploads only")
    if resumable is None:
        resumable = not idempotency_key and file.stat().st_size >= THRESHOLD_BYTES
    if dry_run:
        fields["dry_run"] = "true"
    if max_error_rate is not None:
        fields["max_error_rate"] = repr(max_error_rate)
    if encoding:
        fields["encoding"] = encoding
    if delimiter:
        fields["delimiter"] = delimiter
    if sheet:
        fields["sheet"] = sheet
    with opts.client() as client:
        client.bearer()  # fail on credentials before the bar starts
        progress = reporter_for(f"upload {file.name}", file.stat().st_size, sys.stderr,
                                enabled=not no_progress)
        try:
            with progress:
                if resumable:
                    body = upload_resumable(client, file, route=route, fields=fields,
                                            on_chunk=progress.advance)
                else:
                    body = client.upload(file, route=route, fields=fields,
                                         content_type=content_type,
                                         idempotency_key=idempotency_key,
                                         on_chunk=progress.advance)
        except ApiError as e:
            if as_json and e.body is not None:
                print_json(e.body)
            if _is_data_rejection(e):
                raise CliError(f"upload rejected: {e.message}", exit_code=EXIT_REJECTED) from None
            raise
    if as_json:
        print_json(body)
    else:
        show_upload(body, stdout_console())
    error = body.get("error") or {}
    reason = f"{error.get('code')}: {error.get('message')}" if error else body.get("message", "")
    if body.get("status") == "rejected":
        raise CliError(f"upload rejected: {reason}", exit_code=EXIT_REJECTED)
    if body.get("status") != "uploaded":
        raise CliError(f"upload {body.get('status')}: {reason}")


@cli.command(name="list")
@click.option("--program", "program_name", help="Only this programme (program_name).")
@click.option("--name", "ingestion_name", help="Only this spec name (ingestion_name).")
@click.option("--status", help="uploaded, rejected, failed, receiving, retracting or retracted.")
@click.option("--from", "since", help="Started on or after (YYYY-MM-DD or ISO date-time).")
@click.option("--to", "until", help="Started before (a date: up to the end of that day).")
@click.option("--filename", help="File name contains this (any case).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
@click.pass_obj
@reports("list")
def list_uploads(opts: Options, program_name, ingestion_name, status, since, until, filename,
                 limit, offset, as_json) -> None:
    """List your uploads, newest first (every client's with the admin scope)."""
    params = {"program_name": program_name, "ingestion_name": ingestion_name, "status": status,
              "from": since, "to": until, "filename": filename, "limit": str(limit),
              "offset": str(offset)}
    with opts.client() as client:
        body = client.list_uploads({k: v for k, v in params.items() if v})
    if as_json:
        print_json(body)
    else:
        stdout_console().print(uploads_table(body))


@cli.command()
@click.argument("upload_id")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
@click.pass_obj
@reports("status")
def status(opts: Options, upload_id: str, as_json: bool) -> None:
    """Show an upload: status, counts, object keys and the first rejected rows."""
    with opts.client() as client:
        body = client.get_upload(upload_id)
    if as_json:
        print_json(body)
    else:
        show_upload(body, stdout_console())


@cli.command()
@click.argument("upload_id")
@click.option("--member", help="For a national ZIP: the member whose errors to get.")
@click.pass_obj
@reports("errors")
def errors(opts: Options, upload_id: str, member: str | None) -> None:
    """Write an upload's rejected rows (CSV with _line and _errors) to stdout."""
    sys.stdout.flush()
    out = sys.stdout.buffer  # bytes as the server sent them: no re-encoding of the CSV
    try:
        with opts.client() as client:
            for chunk in client.iter_errors(upload_id, member):
                out.write(chunk)
        out.flush()
    except BrokenPipeError:
        # The reader (e.g. `| head`) has what it wanted: end quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


cli.add_command(processing)


def main() -> None:
    cli.main(prog_name="ingest")
