"""The OpenAPI 3.1 document: every route, its parameters, bodies, answers and error codes.

One declarative list, :data:`OPERATIONS`, is the source; :func:`build_document` turns it into the
document. Error answers all share the ``Error`` schema; each operation lists, per status, the stable
codes it can answer with (``x-error-codes``, also shown in the description). Tests check that every
route of the app is here, that every path here is routed, and that real answers match the schemas
and use only listed codes. When you add a route or a code, add it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from .openapi_schemas import SCHEMAS, Schema, ref

AUTH_ERRORS = {401: ["missing_token", "invalid_token", "token_expired", "token_revoked"],
               403: ["insufficient_scope"]}
SERVER_ERRORS = {500: ["internal_error"]}
DB_ERRORS = {503: ["db_unavailable"]}
STORAGE_ERRORS = {502: ["storage_error", "storage_unavailable"], 507: ["insufficient_storage"]}
SPEC_BODY_ERRORS = {400: ["unknown_kind", "invalid_json", "invalid_spec", "invalid_name"],
                    413: ["body_too_large"]}
# The data itself: what the CSV reader and the header checks refuse (plugins may add codes with
# their own header checks).
FILE_ERRORS = ["empty_file", "no_rows", "missing_column", "unknown_column", "duplicate_header",
               "empty_header_name", "not_text", "not_a_csv", "line_too_long", "unknown_encoding"]
FORM_ERRORS = ["missing_field", "invalid_field", "invalid_name", "invalid_idempotency_key",
               "unknown_ingestion_type", "bad_multipart", "too_many_parts", "too_many_files",
               "missing_file", "option_after_file", "field_too_large", "conflicting_field",
               "reserved_name", "nul_character"]
ZIP_ERRORS = ["not_a_zip", "zip_truncated", "zip_corrupt", "zip_bad_member_name", "zip_slip",
              "zip_nested_archive", "zip_encrypted", "zip_size_mismatch", "zip_duplicate_member",
              "zip_empty", "zip_too_many_entries", "zip_unsupported_compression", "zip_symlink",
              "zip_bomb", "zip_non_csv_member"]
UPLOAD_ERRORS = {404: ["spec_not_found"], 408: ["body_timeout"],
                 409: ["upload_in_progress", "key_conflict"],
                 413: ["upload_too_large"],
                 415: ["not_multipart", "unsupported_file_type", "unsupported_content_encoding"],
                 422: ["idempotency_key_reused"],
                 500: ["worker_crashed", "plugin_error"]}

STATUS_TEXT = {400: "Bad request", 401: "Not authenticated", 403: "Missing scope",
               404: "Not found", 408: "The request body stalled (limits.body_idle_timeout_s)",
               409: "Conflict", 413: "Too large", 415: "Unsupported media type",
               422: "Idempotency-Key used for another request",
               429: "Too many failed attempts (see Retry-After)",
               410: "Gone (retracted)",
               500: "Internal error (quote the request id)", 502: "Storage failed",
               503: "Database unavailable", 507: "Storage full",
               410: "Gone (terminated or expired)", 412: "Unsupported Tus-Resumable version",
               423: "Another request is writing to this upload", 460: "Checksum mismatch"}
JSON = "application/json"
REQUEST_ID_HEADER = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def json_body(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def param(name: str, where: str, description: str, schema: Schema | None = None, *,
          required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": schema or {"type": "string"}}


def path_param(name: str, description: str, schema: Schema | None = None) -> dict[str, Any]:
    return param(name, "path", description, schema, required=True)


KIND = path_param("kind", "spec kind", SCHEMAS["SpecSummary"]["properties"]["kind"])
UPLOAD_ID = path_param("id", "the upload id (`upload_id`)")
UPLOAD_OPTIONS = [
    param("dry_run", "query", "validate and report, write nothing (also a form field)",
          {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no", "on", "off"]}),
    param("max_error_rate", "query", "0..1: above it the upload is rejected and nothing written "
          "(also a form field)", {"type": "number", "minimum": 0, "maximum": 1}),
    param("encoding", "query", "text encoding of the CSV (also a form field)"),
    param("Idempotency-Key", "header", "repeat a request safely: the earlier answer comes back, "
          "with its own status, instead of landing the data twice (1-200 printable "
          "characters). The key covers the route, target, options and file bytes: reused for "
          "anything else it is 422 `idempotency_key_reused`. Dry runs do not claim keys."),
]


def upload_body(form: str) -> dict[str, Any]:
    return {"required": True, "content": {"multipart/form-data": {
        "schema": ref(form),
        "encoding": {"file": {"contentType": "text/csv, application/zip, "
                                             "application/octet-stream"}}}}}


@dataclass(frozen=True)
class Op:
    """One operation. ``scope``: the token scope it needs; None for public ones."""

    method: str
    path: str
    summary: str
    tag: str
    scope: str | None
    responses: dict[int, dict[str, Any]]
    description: str = ""
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    errors: dict[int, list[str]] = field(default_factory=dict)
    security: list[dict[str, list[str]]] | None = None


def _upload_op(path: str, summary: str, description: str, codes_400: list[str],
               extra_413: list[str] = (), form: str = "UploadForm") -> Op:
    return Op("post", path, summary, "ingestion", "ingest", description=description,
              parameters=UPLOAD_OPTIONS, body=upload_body(form),
              responses={200: json_body(ref("Upload"), "the outcome, when the last byte is in: "
                                        "`uploaded`, or `rejected` with nothing written (error "
                                        "rate above `max_error_rate`, nothing ingested)")},
              errors=_merge({400: FORM_ERRORS + codes_400, 413: list(extra_413)}, UPLOAD_ERRORS,
                            STORAGE_ERRORS, DB_ERRORS))


def _merge(*maps: dict[int, list[str]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for m in maps:
        for status, codes in m.items():
            out.setdefault(status, [])
            out[status] += [c for c in codes if c not in out[status]]
    return out


TUS_ID = path_param("id", "the upload URL's last segment (from `Location`)")
TUS_RESUMABLE = param("Tus-Resumable", "header", "tus protocol version", {"const": "1.0.0"},
                      required=True)
TUS_GONE = {404: ["upload_not_found"], 410: ["upload_terminated", "upload_expired"],
            412: ["unsupported_tus_version"]}
# What sending bytes can answer (a PATCH, or a creation with a body): the one-shot routes'
# data errors come from the PATCH that completes the upload.
PATCH_ERRORS = {400: ["missing_header", "invalid_header", "connection_lost",
                      "unsupported_checksum_algorithm", "invalid_checksum"]
                + FILE_ERRORS + ZIP_ERRORS,
                404: ["spec_not_found"], 408: ["body_timeout"],
                413: ["upload_length_exceeded"], 415: ["unsupported_media_type"],
                460: ["checksum_mismatch"], 500: ["worker_crashed", "plugin_error"]}
RESUMABLE = "/api/ingestion/resumable"
RESUMABLE_OPERATIONS = [
    Op("options", RESUMABLE, "tus discovery", "resumable", None,
       description="`Tus-Version`, `Tus-Extension` (creation, creation-with-upload, "
                   "termination, checksum, expiration), `Tus-Max-Size` "
                   "(`limits.max_upload_bytes`) and "
                   "`Tus-Checksum-Algorithm` (sha256, sha1, md5). No token needed.",
       responses={204: {"description": "the protocol's capabilities, in headers"}}),
    Op("post", RESUMABLE, "Create a resumable (tus 1.0) upload", "resumable", "ingest",
       description="`Upload-Length` and `Upload-Metadata` (base64 values): `filename`, "
                   "`ingestion_type` (`national`, or a `.zip` without one: a national "
                   "programme ZIP), `ingestion_name`, `program_name`, `dry_run`, "
                   "`max_error_rate`, `encoding`, checked as the one-shot routes check their "
                   "form. Answers `Location` (the upload URL) and `Upload-Expires`. A body "
                   "(`application/offset+octet-stream`) is the first PATCH "
                   "(creation-with-upload): the answers and codes of PATCH then apply too.",
       parameters=[TUS_RESUMABLE, param("Upload-Length", "header", "the file's size in bytes",
                                        {"type": "integer", "minimum": 0}, required=True),
                   param("Upload-Metadata", "header", "`key base64,key base64,...`")],
       body={"required": False, "content": {"application/offset+octet-stream": {
           "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
       responses={201: {"description": "created; the upload URL is in `Location`"}},
       errors=_merge({400: FORM_ERRORS + ["missing_header", "invalid_header", "invalid_metadata",
                                          "defer_length_unsupported"],
                      404: ["spec_not_found"], 412: ["unsupported_tus_version"],
                      413: ["upload_too_large"],
                      415: ["unsupported_file_type", "unsupported_media_type"]},
                     PATCH_ERRORS, DB_ERRORS)),
    Op("options", RESUMABLE + "/{id}", "tus discovery (on an upload URL)", "resumable", None,
       parameters=[TUS_ID],
       responses={204: {"description": "the protocol's capabilities, in headers"}}),
    Op("head", RESUMABLE + "/{id}", "Where a resumable upload stands", "resumable", "ingest",
       description="`Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Cache-Control: "
                   "no-store`, and `Upload-Expires` while unfinished; once complete, "
                   "`Upload-Id`, `Upload-Status` and `Content-Location` of its upload record. "
                   "Another client's upload is 404.",
       parameters=[TUS_ID, TUS_RESUMABLE],
       responses={200: {"description": "the upload's state, in headers"}},
       errors=_merge(TUS_GONE, DB_ERRORS)),
    Op("patch", RESUMABLE + "/{id}", "Append to a resumable upload", "resumable", "ingest",
       description="Bytes at `Upload-Offset` (which must equal the server's, else 409), "
                   "optionally with `Upload-Checksum: <sha256|sha1|md5> <base64>` (460 on "
                   "mismatch, nothing kept). One PATCH at a time per upload (423 otherwise). The "
                   "PATCH that completes the upload validates and publishes it exactly as a "
                   "one-shot upload (same keys, record and answer via `uploads/{id}`): 204 with "
                   "`Upload-Id`, `Upload-Status` and `Content-Location`; a rejected file answers "
                   "the one-shot route's error, with `Upload-Id`.",
       parameters=[TUS_ID, TUS_RESUMABLE,
                   param("Upload-Offset", "header", "where these bytes go",
                         {"type": "integer", "minimum": 0}, required=True),
                   param("Upload-Checksum", "header", "`<algorithm> <base64 digest>` of the body")],
       body={"required": True, "content": {"application/offset+octet-stream": {
           "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
       responses={204: {"description": "appended; `Upload-Offset` is the new offset"}},
       errors=_merge(TUS_GONE, PATCH_ERRORS, {409: ["offset_mismatch"], 423: ["upload_locked"]},
                     STORAGE_ERRORS, DB_ERRORS)),
    Op("delete", RESUMABLE + "/{id}", "Terminate a resumable upload", "resumable", "ingest",
       description="The staged bytes go at once; the URL then answers 410.",
       parameters=[TUS_ID, TUS_RESUMABLE],
       responses={204: {"description": "terminated"}},
       errors=_merge(TUS_GONE, {423: ["upload_locked"]}, STORAGE_ERRORS, DB_ERRORS)),
]

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
       errors={401: ["missing_credentials", "invalid_client"], 429: ["rate_limited"]},
       security=[{"basicAuth": []}, {}]),
    Op("post", "/api/spec/{kind}", "Register a cQube spec", "specs", "spec",
       description="The cQube spec body, translated to a Cerberus schema and stored with the "
                   "original. A changed re-post makes a new version; an identical one is a no-op.",
       parameters=[KIND], body={"required": True, "content": {JSON: {"schema": ref("CqubeSpec")}}},
       responses={201: json_body(ref("SpecStored"), "a new version was stored"),
                  200: json_body(ref("SpecStored"), "identical to the latest version: unchanged")},
       errors=_merge(SPEC_BODY_ERRORS, DB_ERRORS)),
    Op("put", "/api/specs/{kind}/{name}", "Register a native Cerberus schema", "specs", "spec",
       parameters=[KIND, path_param("name", "the spec name")],
       body={"required": True, "content": {JSON: {"schema": ref("CerberusSpec")}}},
       responses={201: json_body(ref("SpecStored"), "a new version was stored"),
                  200: json_body(ref("SpecStored"), "identical to the latest version: unchanged")},
       errors=_merge(SPEC_BODY_ERRORS, DB_ERRORS)),
    Op("get", "/api/specs", "List specs (latest version of each)", "specs", "read",
       parameters=[param("kind", "query", "only this kind", KIND["schema"])],
       responses={200: json_body(ref("SpecList"), "the latest version of every spec")},
       errors=_merge({400: ["unknown_kind"]}, DB_ERRORS)),
    Op("get", "/api/specs/{kind}/{name}", "One spec with all its versions", "specs", "read",
       parameters=[KIND, path_param("name", "the spec name"),
                   param("schemas", "query", "`true`: every version with its schema and body "
                         "(to compare versions)", {"type": "string", "enum": ["true", "false"]})],
       responses={200: json_body(ref("SpecVersions"), "the latest version in full, and every "
                                 "version's summary (newest first)")},
       errors=_merge({400: ["unknown_kind"], 404: ["spec_not_found"]}, DB_ERRORS)),
    _upload_op("/api/ingestion/new_programs", "Upload a state programme CSV",
               "Streamed while it arrives: valid rows land under `process_input/…`, rejected rows "
               "under `ingestion_error/…`, both published only if the whole upload succeeds. "
               "Form fields `ingestion_type`, `ingestion_name`, `program_name` (not for "
               "dimension) and `file` (.csv); fields may come after the file, but the options "
               "(`dry_run`, `max_error_rate`, `encoding`) only before it or as query parameters.",
               FILE_ERRORS),
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
       errors=_merge({400: ["missing_field"], 404: ["upload_not_found"]}, DB_ERRORS)),
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
       errors=_merge({400: ["invalid_field"]}, DB_ERRORS)),
    Op("get", "/api/ingestion/uploads/{id}", "One upload", "ingestion", "read",
       description="Another client's upload answers 404 unless the token has the `admin` scope.",
       parameters=[UPLOAD_ID],
       responses={200: json_body(ref("Upload"), "status, counts, object keys, first row errors")},
       errors=_merge({404: ["upload_not_found"]}, DB_ERRORS)),
    Op("delete", "/api/ingestion/uploads/{id}", "Retract an upload", "ingestion", "ingest",
       description="Deletes the upload's objects and keeps its record as `retracted`, with "
                   "`retracted_by` and `retracted_at` (also logged as `upload_retracted`). "
                   "Scope `ingest` retracts one's own uploads, `admin` anyone's. If a delete "
                   "fails the upload stays `retracting` (502 `retract_incomplete`); retracting "
                   "again finishes the job. Retracting a retracted upload answers it again.",
       parameters=[UPLOAD_ID],
       responses={200: json_body(ref("Upload"), "the retracted upload")},
       errors=_merge({404: ["upload_not_found"], 409: ["not_retractable"],
                      502: ["retract_incomplete"]}, STORAGE_ERRORS, DB_ERRORS)),
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
       errors=_merge({400: ["member_required"],
                      404: ["upload_not_found", "no_error_file", "member_not_found",
                            "object_not_found"], 410: ["upload_retracted"]},
                     STORAGE_ERRORS, DB_ERRORS)),
    Op("get", "/api/ingestion/uploads/{id}/valid", "The valid rows as written", "ingestion",
       "read", description="The valid-rows file, streamed from storage. A national ZIP has one "
                           "per member: name it with `member`.",
       parameters=[UPLOAD_ID, param("member", "query", "national ZIPs: the member (CSV name)")],
       responses={200: {"description": "the valid rows", "content": {
           "text/csv": {"schema": {"type": "string"}}}}},
       errors=_merge({400: ["member_required"],
                      404: ["upload_not_found", "no_valid_file", "member_not_found",
                            "object_not_found"], 410: ["upload_retracted"]},
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
       errors={404: ["not_found"]}),
    Op("get", "/api/docs/{asset}", "Static files of the docs page", "service", None,
       parameters=[path_param("asset", "file name (a fixed list)")],
       responses={200: {"description": "the file", "content": {
           "text/javascript": {"schema": {"type": "string"}},
           "text/css": {"schema": {"type": "string"}},
           "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}}},
       errors={404: ["not_found"]}),
]

# cQube's routes we added and the cqube profile's answers build on the helpers above.
from . import openapi_routes  # noqa: E402

OPERATIONS += openapi_routes.OPERATIONS

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
""" + openapi_routes.CQUBE_PROFILE


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": _operation_id(op), "summary": op.summary,
                           "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    if op.parameters:
        out["parameters"] = op.parameters
    if op.body is not None:
        out["requestBody"] = op.body
    errors = _merge(AUTH_ERRORS if op.scope else {}, op.errors, SERVER_ERRORS)
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
                 {"name": "resumable"}, {"name": "service"}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **openapi_routes.SCHEMAS},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basicAuth": {"type": "http", "scheme": "basic",
                              "description": "client id and secret (token endpoint only)"},
            },
            "headers": {"X-Request-ID": {"description": "the request id (echoed or new)",
                                         "schema": {"type": "string"}}},
        },
    }
