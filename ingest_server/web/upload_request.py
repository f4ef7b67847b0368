"""An upload's request, read from its form, query and headers: what every upload route (one-shot
and resumable) checks before any byte of the file is used."""

from __future__ import annotations

from aiohttp import web

from ..csvstream.delimiter import parse_delimiter
from ..errors import BadRequest, UnsupportedMedia
from ..ingest.model import UploadRequest
from ..plugins.programs import ProgramType, program_name, safe_name
from . import appkeys
from .middleware import PRINCIPAL
from .multipart import Form

OPTIONS = frozenset({"ingestion_type", "ingestion_name", "program_name", "dry_run",
                     "max_error_rate", "encoding", "sheet", "delimiter"})
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def _bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    low = value.strip().lower()
    if low in TRUE | FALSE:
        return low in TRUE
    raise BadRequest(f"{name} must be true or false", code="invalid_field", field=name)


def _rate(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise BadRequest("max_error_rate must be a number from 0 to 1", code="invalid_field",
                         field="max_error_rate")
    return rate


def upload_request(request: web.Request, form: Form, route: str) -> UploadRequest:
    """The upload's request from the form and query. The program types registered for ``route``
    decide what is asked: a route with one type (national ZIPs) needs no ``ingestion_type``."""
    q = request.query
    types = request.app[appkeys.REGISTRY].types_for(route)
    if len(types) == 1 and types[0].archive:
        pt, name = types[0], None
    else:
        kind = form.get("ingestion_type", q)
        if not kind:
            raise BadRequest("ingestion_type is required (event, dimension or dataset)",
                             code="missing_field", field="ingestion_type")
        pt = next((t for t in types if t.name == kind), None)
        if pt is None:
            known = sorted(t.name for t in types)
            raise BadRequest(f"unknown ingestion_type '{kind}' (expected one of "
                             f"{', '.join(known)})", code="unknown_ingestion_type",
                             field="ingestion_type")
        name = form.get("ingestion_name", q)
        if not name:
            raise BadRequest("ingestion_name is required", code="missing_field",
                             field="ingestion_name")
        safe_name(name, "ingestion_name")
    program = form.get("program_name", q) or None
    if program is not None:
        # Reserved only where it names the data folder (dimension and dataset keys ignore it).
        if "{program}" in pt.valid_key:
            program_name(program)
        else:
            safe_name(program, "program_name")
    elif pt.needs_program:
        raise BadRequest(f"program_name is required for ingestion_type '{pt.name}'",
                         code="missing_field", field="program_name")
    encoding = form.get("encoding", q) or None
    key = idempotency_key(request)
    return UploadRequest(program_type=pt, ingestion_name=name or "", program=program,
                         filename=form.filename, client=request[PRINCIPAL].client,
                         dry_run=_bool(form.get("dry_run", q), "dry_run"),
                         max_error_rate=_rate(form.get("max_error_rate", q)),
                         encoding=encoding, idempotency_key=key,
                         sheet=form.get("sheet", q) or None,
                         delimiter=parse_delimiter(form.get("delimiter", q)))


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key (1-200 printable characters), None without the header. An
    empty header is refused like any other bad key: the client meant to send one."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 200 and key.isprintable()):
        raise BadRequest("Idempotency-Key must be 1-200 printable characters",
                         code="invalid_idempotency_key")
    return key


def check_extension(filename: str, pt: ProgramType) -> None:
    allowed = pt.extensions
    if "." in filename and not filename.lower().endswith(allowed):
        raise UnsupportedMedia(f"'{filename}' is not one of {', '.join(allowed)}",
                               code="unsupported_file_type", allowed=list(allowed))
