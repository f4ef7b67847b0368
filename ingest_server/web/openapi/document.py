"""The OpenAPI 3.1 document: every route, its parameters, bodies, answers and error codes.

One declarative list, :data:`OPERATIONS`, is the source; :func:`build_document` turns it into the
document. Error answers all share the ``Error`` schema; each operation lists, per status, the stable
codes it can answer with (``x-error-codes``, also shown in the description). Tests check that every
route of the app is here, that every path here is routed, and that real answers match the schemas
and use only listed codes. When you add a route or a code, add it here.
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from . import processing, routes
from .ops import (AUTH_ERRORS, DB_ERRORS, FILE_ERRORS, FORM_ERRORS, JSON, SERVER_ERRORS,
                  READING_ERRORS, SPEC_BODY_ERRORS, STORAGE_ERRORS, UPLOAD_ERRORS, ZIP_ERRORS, Op,
                  merge, codes, json_body, param, path_param)
from .resumable import RESUMABLE_OPERATIONS
from .schemas import SCHEMAS, ref


STATUS_TEXT = {400: "Bad request", 401: "Not authenticated", 403: "Missing scope",
               404: "Not found", 408: "The request body stalled (limits.body_idle_timeout_s)",
               409: "Conflict", 413: "Too large", 415: "Unsupported media type",
               422: "Idempotency-Key used for another request",
               429: "Too many requests: failed logins, or a per-client quota ([quotas]; see "
                    "Retry-After where waiting helps)",
               410: "Gone (retracted)",
               500: "Internal error (quote the request id)", 502: "Storage failed",
               503: "Database unavailable", 507: "Storage full",
               410: "Gone (terminated or expired)", 412: "Unsupported Tus-Resumable version",
               423: "Another request is writing to this upload", 460: "Checksum mismatch"}
REQUEST_ID_HEADER = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


# New versions of one spec by one client in 24 h (quotas.spec_versions_per_day).
SPEC_QUOTA = codes("spec_version_quota")
KIND = path_param("kind", "spec kind", SCHEMAS["SpecSummary"]["properties"]["kind"])
UPLOAD_ID = path_param("id", "the upload id (`upload_id`)")
UPLOAD_OPTIONS = [
    param("dry_run", "query", "validate and report, write nothing (also a form field)",
          {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no", "on", "off"]}),
    param("max_error_rate", "query", "0..1: above it the upload is rejected and nothing written "
          "(also a form field)", {"type": "number", "minimum": 0, "maximum": 1}),
    param("encoding", "query", "text encoding of the CSV (also a form field); without it a "
          "byte-order mark decides, else UTF-8 (a file that is not is refused naming the "
          "likely encoding)"),
    param("delimiter", "query", "what separates the CSV's cells (also a form field); without "
          "it found from the header", {"type": "string", "enum": [",", ";", "\t", "|", "comma",
                                                                  "semicolon", "tab", "pipe"]}),
    param("sheet", "query", "the sheet of a workbook (.xlsx, .xls, .ods) to read (also a form "
          "field); needed when it has several"),
    param("Idempotency-Key", "header", "repeat a request safely: the earlier answer comes back, "
          "with its own status, instead of landing the data twice (1-200 printable "
          "characters). The key covers the route, target, options and file bytes: reused for "
          "anything else it is 422 `idempotency_key_reused`. Dry runs do not claim keys."),
]


def upload_body(form: str) -> dict[str, Any]:
    return {"required": True, "content": {"multipart/form-data": {
        "schema": ref(form),
        "encoding": {"file": {"contentType": "text/csv, application/zip, "
                                             "application/vnd.openxmlformats-officedocument."
                                             "spreadsheetml.sheet, application/vnd.ms-excel, "
                                             "application/vnd.oasis.opendocument.spreadsheet, "
                                             "application/octet-stream"}}}}}


def _upload_op(path: str, summary: str, description: str, codes_400: list[str],
               extra_413: list[str] = (), form: str = "UploadForm") -> Op:
    return Op("post", path, summary, "ingestion", "ingest", description=description,
              parameters=UPLOAD_OPTIONS, body=upload_body(form),
              responses={200: json_body(ref("Upload"), "the outcome, when the last byte is in: "
                                        "`uploaded`, or `rejected` with nothing written (error "
                                        "rate above `max_error_rate`, nothing ingested)")},
              errors=merge(FORM_ERRORS, codes_400, list(extra_413), UPLOAD_ERRORS,
                            STORAGE_ERRORS, DB_ERRORS))


OPERATIONS: list[Op] = [
    Op("get", "/api/ingestion/generatejwt", "Issue a bearer token", "auth", None,
       description="HTTP Basic credentials of a configured client in, a signed JWT out. Open "
                   "without credentials only when `auth.open_token_endpoint = true` (development). "
                   "The body is the bare token as `text/plain` (send it as `Bearer <body>`, as "
                   "cQube's clients do) unless `Accept: application/json` asks for the JSON "
                   "answer.",
       parameters=[param("Accept", "header", "`application/json` for the JSON answer")],
       responses={200: {"description": "a bearer token", "content": {
           JSON: {"schema": ref("Token")}, "text/plain": {"schema": {"type": "string"}}}}},
       errors=codes("missing_credentials", "invalid_client", "rate_limited"),
       security=[{"basicAuth": []}, {}]),
    Op("post", "/api/spec/{kind}", "Register a cQube spec", "specs", "spec",
       description="The cQube spec body, translated to a Cerberus schema and stored with the "
                   "original. A changed re-post makes a new version; an identical one is a no-op.",
       parameters=[KIND], body={"required": True, "content": {JSON: {"schema": ref("CqubeSpec")}}},
       responses={201: json_body(ref("SpecStored"), "a new version was stored"),
                  200: json_body(ref("SpecStored"), "identical to the latest version: unchanged")},
       errors=merge(SPEC_BODY_ERRORS, SPEC_QUOTA, DB_ERRORS)),
    Op("put", "/api/specs/{kind}/{name}", "Register a native Cerberus schema", "specs", "spec",
       parameters=[KIND, path_param("name", "the spec name")],
       body={"required": True, "content": {JSON: {"schema": ref("CerberusSpec")}}},
       responses={201: json_body(ref("SpecStored"), "a new version was stored"),
                  200: json_body(ref("SpecStored"), "identical to the latest version: unchanged")},
       errors=merge(SPEC_BODY_ERRORS, SPEC_QUOTA, DB_ERRORS)),
    Op("get", "/api/specs", "List specs (latest version of each)", "specs", "read",
       parameters=[param("kind", "query", "only this kind", KIND["schema"])],
       responses={200: json_body(ref("SpecList"), "the latest version of every spec")},
       errors=merge(codes("unknown_kind"), DB_ERRORS)),
    Op("get", "/api/specs/{kind}/{name}", "One spec and a page of its versions", "specs", "read",
       parameters=[KIND, path_param("name", "the spec name"),
                   param("schemas", "query", "`true`: the versions of the page with their schema "
                         "and body (to compare versions)",
                         {"type": "string", "enum": ["true", "false"]}),
                   param("limit", "query", "versions per page: 1-100, default 50; with "
                         "`schemas=true` 1-5, default 5", {"type": "integer", "minimum": 1,
                                                             "maximum": 100}),
                   param("before", "query", "only versions older than this one (the previous "
                         "page's `next_before`)", {"type": "integer", "minimum": 1})],
       responses={200: json_body(ref("SpecVersions"), "the latest version in full, and one page "
                                 "of versions (newest first); `next_before` for the next page, "
                                 "null on the last")},
       errors=merge(codes("unknown_kind", "spec_not_found", "invalid_field"), DB_ERRORS)),
    Op("post", "/api/specs/infer", "A spec draft from a sample file", "specs", "read",
       description="A CSV (any delimiter; a BOM's encoding, else UTF-8 or `encoding`) or a "
                   "workbook sample, multipart `file` and `kind` (optional `name`, `sheet`, "
                   "`delimiter`, `encoding`). Answers a cQube spec draft (types, `format: "
                   "date`, `shouldnotnull`/`required` from blanks, `enum` for few distinct "
                   "texts) and per-column evidence (blank and distinct counts, examples, date "
                   "layouts seen). Nothing is stored: edit it, then POST it to /api/spec/{kind}.",
       body={"required": True, "content": {"multipart/form-data": {"schema": {
           "type": "object", "required": ["file"], "properties": {
               "kind": {"type": "string", "enum": ["event", "dimension", "dataset"]},
               "name": {"type": "string"},
               "file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}},
       responses={200: json_body({"type": "object", "required": ["kind", "name", "spec",
                                                                  "evidence"]},
                                 "the draft and its evidence")},
       errors=merge(codes("unknown_kind", "invalid_name", "not_text", "not_a_csv",
                          "empty_file", "sheet_required", "sheet_not_found",
                          "workbook_unreadable", "workbook_too_large", "cell_outside_table",
                          "missing_file",
                          "invalid_field",
                          "invalid_spec", "not_multipart"), DB_ERRORS)),
    Op("get", "/api/specs/{kind}/{name}/template", "The file to fill in for a spec", "specs",
       "read", description="The spec's header in its own column order, as CSV or as an .xlsx "
                           "workbook (a `data` sheet with a number or date format per column "
                           "and a drop-down list per `enum`, a `rules` sheet in words). "
                           "`example=true` adds a row that passes the spec's checks.",
       parameters=[KIND, path_param("name", "the spec name"),
                   param("format", "query", "csv (default) or xlsx",
                         {"type": "string", "enum": ["csv", "xlsx"]}),
                   param("example", "query", "`true`: add an example row",
                         {"type": "string", "enum": ["true", "false"]})],
       responses={200: {"description": "the template", "content": {
           "text/csv": {"schema": {"type": "string"}},
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
               "schema": {"type": "string", "format": "binary"}}}}},
       errors=merge(codes("unknown_kind", "spec_not_found", "invalid_field"), DB_ERRORS)),
    _upload_op("/api/ingestion/new_programs", "Upload a state programme CSV",
               "Streamed while it arrives: valid rows land under `process_input/…`, rejected rows "
               "under `ingestion_error/…`, both published only if the whole upload succeeds. "
               "Form fields `ingestion_type`, `ingestion_name`, `program_name` (not for "
               "dimension) and `file` (.csv); fields may come after the file, but the options "
               "(`dry_run`, `max_error_rate`, `encoding`) only before it or as query parameters.",
               FILE_ERRORS + READING_ERRORS),
    _upload_op("/api/ingestion/national_programs", "Upload a national programme ZIP",
               "A ZIP of `<name>.csv` files, each validated against the event spec `<name>`; valid "
               "rows land under `emission/…`, rejected under `emission-error/…`. Per-member "
               "results are in `members`.",
               FILE_ERRORS + ZIP_ERRORS, extra_413=["zip_too_large"], form="NationalUploadForm"),
    *RESUMABLE_OPERATIONS,
    Op("get", "/api/ingestion/file-status", "Latest upload of a file (cQube status query)",
       "ingestion", "read",
       parameters=[param("filename", "query", "the uploaded file's name", required=True),
                   param("ingestion_type", "query", "only uploads of this type"),
                   param("ingestion_name", "query", "only uploads for this spec name")],
       responses={200: json_body(ref("Upload"), "the latest matching upload")},
       errors=merge(codes("missing_field", "upload_not_found"), DB_ERRORS)),
    Op("get", "/api/ingestion/uploads", "List uploads, newest first", "ingestion", "read",
       description="The caller's own uploads; every client's with the `admin` scope.",
       parameters=[param("status", "query", "only this status",
                         SCHEMAS["Upload"]["properties"]["status"]),
                   param("route", "query", "only `new_programs` or `national_programs`"),
                   param("program_name", "query", "only this programme"),
                   param("ingestion_name", "query", "only this spec name"),
                   param("filename", "query", "file name contains this (any case)"),
                   param("from", "query", "started at or after (YYYY-MM-DD or ISO date-time, UTC "
                         "when no offset)"),
                   param("to", "query", "started before (a date: up to the end of that day)"),
                   param("limit", "query", "page size (1-500, default 50)",
                         {"type": "integer", "minimum": 1, "maximum": 500}),
                   param("offset", "query", "rows to skip", {"type": "integer", "minimum": 0})],
       responses={200: json_body(ref("UploadList"), "one page of uploads")},
       errors=merge(codes("invalid_field"), DB_ERRORS)),
    Op("get", "/api/ingestion/uploads/{id}", "One upload", "ingestion", "read",
       description="Another client's upload answers 404 unless the token has the `admin` scope.",
       parameters=[UPLOAD_ID],
       responses={200: json_body(ref("Upload"), "status, counts, object keys, first row errors")},
       errors=merge(codes("upload_not_found"), DB_ERRORS)),
    Op("delete", "/api/ingestion/uploads/{id}", "Retract an upload", "ingestion", "ingest",
       description="Deletes the upload's objects and keeps its record as `retracted`, with "
                   "`retracted_by` and `retracted_at` (also logged as `upload_retracted`). "
                   "Scope `ingest` retracts one's own uploads, `admin` anyone's. If a delete "
                   "fails the upload stays `retracting` (502 `retract_incomplete`); retracting "
                   "again finishes the job. Retracting a retracted upload answers it again.",
       parameters=[UPLOAD_ID],
       responses={200: json_body(ref("Upload"), "the retracted upload")},
       errors=merge(codes("upload_not_found", "not_retractable", "retract_incomplete"),
                     STORAGE_ERRORS, DB_ERRORS)),
    Op("get", "/api/ingestion/uploads/{id}/errors", "The full rejected-rows file", "ingestion",
       "read", description="The original header plus `_line` and `_errors`, streamed from "
                           "storage. A national ZIP has one per member: name it with `member`. "
                           "`formula_safe=true`: cells starting with `=`, `+`, `-`, `@`, tab or "
                           "CR get a leading `'` (for spreadsheets); the default is the exact file.",
       parameters=[UPLOAD_ID, param("member", "query", "national ZIPs: the member (CSV name)"),
                   param("formula_safe", "query", "escape formula-like cells",
                         {"type": "string", "enum": ["true", "false"]})],
       responses={200: {"description": "the error file", "content": {
           "text/csv": {"schema": {"type": "string"}}}}},
       errors=merge(codes("member_required", "upload_not_found", "no_error_file",
                           "member_not_found", "object_not_found", "upload_retracted",
                           "object_replaced"),
                     STORAGE_ERRORS, DB_ERRORS)),
    Op("get", "/api/ingestion/uploads/{id}/valid", "The valid rows as written", "ingestion",
       "read", description="The valid-rows file, streamed from storage. A national ZIP has one "
                           "per member: name it with `member`.",
       parameters=[UPLOAD_ID, param("member", "query", "national ZIPs: the member (CSV name)")],
       responses={200: {"description": "the valid rows", "content": {
           "text/csv": {"schema": {"type": "string"}}}}},
       errors=merge(codes("member_required", "upload_not_found", "no_valid_file",
                           "member_not_found", "object_not_found", "upload_retracted",
                           "object_replaced"),
                     STORAGE_ERRORS, DB_ERRORS)),
    Op("get", "/api/plugins", "Loaded plugins, program types and Cerberus extensions", "service",
       "read", responses={200: json_body(ref("Plugins"), "what is loaded")}),
    Op("get", "/healthz", "Liveness", "service", None,
       responses={200: json_body(ref("Health"), "the process is serving")}),
    Op("get", "/readyz", "Readiness: database and storage answer", "service", None,
       responses={200: json_body(ref("Ready"), "ready"),
                  503: json_body(ref("Ready"), "not ready: `checks` names what failed, or "
                                       "`draining` after SIGTERM")}),
    Op("get", "/metrics", "Prometheus metrics (summed over --workers)", "service", None,
       responses={200: {"description": "Prometheus text exposition format", "content": {
           "text/plain": {"schema": {"type": "string"}}}}}),
    Op("get", "/api/openapi.json", "This document", "service", None,
       responses={200: json_body({"type": "object"}, "the OpenAPI 3.1 document")}),
    Op("get", "/api/docs", "Interactive API docs (Swagger UI)", "service", None,
       responses={200: {"description": "the docs page",
                        "content": {"text/html": {"schema": {"type": "string"}}}}}),
    Op("get", "/", "The web console (HTML for browsers)", "service", None,
       description="Sign in, upload, history, one upload, specs. Talks to this API with a token.",
       responses={200: {"description": "the console page",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
                  304: {"description": "unchanged (ETag)"}}),
    Op("get", "/console/settings.json", "What the console needs before signing in", "service",
       None, responses={200: json_body(ref("ConsoleSettings"), "server features")}),
    Op("get", "/console/{asset}", "Static files of the console", "service", None,
       parameters=[path_param("asset", "file name (the files shipped in web/console)")],
       responses={200: {"description": "the file", "content": {
           "text/javascript": {"schema": {"type": "string"}},
           "text/css": {"schema": {"type": "string"}}}},
                  304: {"description": "unchanged (ETag)"}},
       errors=codes("not_found")),
    Op("get", "/api/docs/{asset}", "Static files of the docs page", "service", None,
       parameters=[path_param("asset", "file name (a fixed list)")],
       responses={200: {"description": "the file", "content": {
           "text/javascript": {"schema": {"type": "string"}},
           "text/css": {"schema": {"type": "string"}},
           "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}}},
       errors=codes("not_found")),
]

# cQube's routes we added and the cqube profile's answers build on the helpers above.

OPERATIONS += routes.OPERATIONS
OPERATIONS += processing.OPERATIONS

INFO_DESCRIPTION = """\
Streams CSV and ZIP uploads, validates every row against Cerberus schemas, and lands valid and
rejected rows in storage. cQube-compatible paths and field names.

**Errors** all have one shape: `{"error": {"code", "message", "details"}}` (schema `Error`).
Each operation lists the stable `code`s it can answer with per status (`x-error-codes`). Any path
can also answer `404 not_found` or `405 method_not_allowed`. Every answer carries `X-Request-ID`
(the client's own when it sent a sane one), also found in the server's log lines.

**Auth**: `GET /api/ingestion/generatejwt` with HTTP Basic client credentials gives a bearer
token; the other `/api/` operations need it with the scope shown (`ingest`, `spec`, `read`).
Each client sees only its own uploads (listing, `uploads/{id}`, its files, `file-status`); the
`admin` scope sees, and may retract, every client's.
""" + routes.CQUBE_PROFILE


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": _operation_id(op), "summary": op.summary,
                           "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if op.parameters:
        out["parameters"] = op.parameters
    if op.body is not None:
        out["requestBody"] = op.body
    errors = merge(AUTH_ERRORS if op.scope else {}, op.errors, SERVER_ERRORS)
    responses: dict[str, Any] = {str(s): r for s, r in sorted(op.responses.items())}
    for status, codes in sorted(errors.items()):
        text = ", ".join(f"`{c}`" for c in codes)
        responses[str(status)] = dict(json_body(ref("Error"), f"{STATUS_TEXT[status]}: {text}"),
                                      **{"x-error-codes": codes})
    out["responses"] = {s: dict(r, headers=REQUEST_ID_HEADER) for s, r in responses.items()}
    if op.security is not None:
        out["security"] = op.security
    elif op.scope:
        out["security"] = [{"bearerAuth": [op.scope]}]
        out["description"] = (out.get("description", "") + f"\n\nScope: `{op.scope}`.").strip()
    else:
        out["security"] = []
    return out


def _operation_id(op: Op) -> str:
    words = [w.strip("{}") for w in op.path.split("/") if w and w != "api"]
    return op.method + "_" + "_".join(words).replace("-", "_").replace(".", "_")


def build_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ingest-server", "version": __version__,
                 "description": INFO_DESCRIPTION},
        "tags": [{"name": "auth"}, {"name": "specs"}, {"name": "ingestion"},
                 {"name": "resumable"}, {"name": "processing"}, {"name": "service"}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **routes.SCHEMAS},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basicAuth": {"type": "http", "scheme": "basic",
                              "description": "client id and secret (token endpoint only)"},
            },
            "headers": {"X-Request-ID": {"description": "the request id (echoed or new)",
                                         "schema": {"type": "string"}}},
        },
    }
