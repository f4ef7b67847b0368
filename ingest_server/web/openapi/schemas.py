"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of every JSON body the API sends or takes.

Top-level answer objects are closed (``additionalProperties: false``): a field added to a response
without being documented here fails the schema tests, so the document cannot drift silently.
Free-form parts (Cerberus schemas, error ``details``, plugin data) stay open.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def closed(properties: dict[str, Schema], *, required: list[str] | None = None,
           description: str | None = None) -> Schema:
    """An object with exactly these properties (all required unless ``required`` says)."""
    out: Schema = {"type": "object", "properties": properties,
                   "required": list(properties) if required is None else required,
                   "additionalProperties": False}
    if description:
        out["description"] = description
    return out


STRING, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number", "boolean"))
COUNT = {"type": "integer", "minimum": 0}
SNAKE_CODE = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
SPEC_KIND = {"type": "string", "enum": ["event", "dimension", "dataset"]}
UPLOAD_STATUS = {"type": "string", "enum": ["receiving", "uploaded", "rejected", "failed",
                                           "retracting", "retracted"],
                 "description": "`receiving` while in progress; `uploaded`: valid rows landed; "
                                "`rejected`: the file (or its error rate) was refused, nothing "
                                "written; `failed`: a server-side failure, nothing written; "
                                "`retracted`: landed, then taken back (DELETE), its objects gone; "
                                "`retracting`: a retraction that has not finished (retry it)"}
KEY_OR_KEYS = {"anyOf": [STRING, {"type": "array", "items": STRING}, {"type": "null"}],
               "description": "object key; a list of keys for a national ZIP (one per member)"}

SPEC_FIELDS: dict[str, Schema] = {
    "kind": SPEC_KIND, "name": STRING, "version": {"type": "integer", "minimum": 1},
    "sha256": STRING, "source_format": {"type": "string", "enum": ["cqube", "cerberus"]},
    "created_at": nullable(dict(STRING, format="date-time")), "created_by": nullable(STRING),
    "columns": {"type": "array", "items": STRING,
                "description": "the columns in the spec's own order (as its template has them)"},
}

SCHEMAS: dict[str, Schema] = {
    "Error": closed({
        "error": closed({
            "code": dict(SNAKE_CODE, description="stable machine-readable code (listed per "
                                                 "endpoint and status)"),
            "message": dict(STRING, description="human-readable explanation"),
            "details": {"type": "object", "description": "code-specific data, e.g. `field`, "
                        "`columns`, `line`, `max_upload_bytes`, `request_id`"},
        }),
    }, description="The one error shape of every JSON error answer."),
    "Token": closed({
        "token": dict(STRING, description="a signed JWT; send it as `Authorization: Bearer …`"),
        "token_type": {"type": "string", "const": "Bearer"},
        "expires_in": dict(COUNT, description="seconds until the token expires"),
        "scope": dict(STRING, description="space-separated scopes: `ingest`, `spec`, `read`"),
    }),
    "RowError": closed({
        "line": dict(COUNT, description="1-based physical line of the file (the header is line 1)"),
        "column": nullable(STRING),
        "value": dict(STRING, description="the original text of the cell (of the row for a "
                                          "whole-row error)"),
        "code": SNAKE_CODE,
        "message": STRING,
        "member": dict(STRING, description="national ZIPs: the member (CSV name) of the row"),
    }, required=["line", "column", "value", "code", "message"]),
    "Warning": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {"code": SNAKE_CODE, "message": STRING, "details": {"type": "object"}},
        "description": "something the upload did without refusing anything (e.g. "
                       "`error_columns_dropped`: `_line`/`_errors` of an error file uploaded "
                       "again; `read_from_workbook`: the sheet read and its header row; "
                       "`delimiter_detected`; `encoding_from_bom`); a ZIP member's warnings "
                       "name it in `details.member`"},
    "UploadError": nullable({
        "type": "object", "required": ["code", "message"],
        "properties": {"code": SNAKE_CODE, "message": STRING, "details": {"type": "object"},
                       "members": {"type": "array", "items": STRING}},
        "description": "why the upload was rejected or failed (null when uploaded)"}),
    "UploadObjects": {
        "type": "object", "additionalProperties": False,
        "properties": {"valid": KEY_OR_KEYS, "errors": KEY_OR_KEYS,
                       "duplicate_of": dict(STRING, description="the same bytes were landed "
                                            "by this earlier upload: its objects are shown")},
        "description": "published objects; null keys when nothing was written"},
    "Replacement": closed({
        "part": {"type": "string", "enum": ["valid", "errors"]}, "key": STRING,
        "at": dict(STRING, format="date-time"),
        "by_upload_id": dict(nullable(STRING), description="the replacing upload, when it is "
                             "the same client's (another client's is not named)"),
        "by_same_client": BOOLEAN,
    }, required=["part", "key", "at", "by_upload_id", "by_same_client"],
       description="One object of this upload that a later upload replaced."),
    "Member": closed({
        "name": STRING, "spec_version": nullable(INTEGER), "total_rows": COUNT,
        "valid_rows": COUNT, "invalid_rows": COUNT, "error_rate": NUMBER,
        "objects": ref("UploadObjects"),
        "errors_sample": {"type": "array", "items": ref("RowError")},
        "error": ref("UploadError"),
    }, required=["name", "spec_version", "total_rows", "valid_rows", "invalid_rows", "error_rate",
                 "objects", "error"],
       description="One CSV of a national ZIP (`errors_sample` left out in listings)."),
    "Upload": closed({
        "upload_id": STRING,
        "status": UPLOAD_STATUS,
        "message": STRING,
        "route": {"type": "string", "enum": ["new_programs", "national_programs"]},
        "filename": nullable(STRING),
        "ingestion_type": nullable(STRING),
        "ingestion_name": nullable(STRING),
        "program_name": nullable(STRING),
        "spec_version": nullable(INTEGER),
        "dry_run": BOOLEAN,
        "bytes": COUNT,
        "sha256": nullable(STRING),
        "total_rows": COUNT, "valid_rows": COUNT, "invalid_rows": COUNT,
        "objects": ref("UploadObjects"),
        "errors_sample": {"type": "array", "items": ref("RowError"),
                          "description": "the first row errors (`limits.errors_sample`)"},
        "warnings": {"type": "array", "items": ref("Warning")},
        "error": ref("UploadError"),
        "started_at": dict(STRING, format="date-time"),
        "finished_at": nullable(dict(STRING, format="date-time")),
        "members": {"type": "array", "items": ref("Member")},
        "idempotent_replay": dict(BOOLEAN, description="true when this is the earlier answer "
                                  "for the same Idempotency-Key"),
        "client": dict(nullable(STRING), description="the client id that sent it"),
        "retracted_at": nullable(dict(STRING, format="date-time")),
        "retracted_by": dict(nullable(STRING), description="the client id that retracted it"),
        "retract_error": dict(nullable({"type": "object"}), description="a retraction that did "
                              "not finish: `remaining` keys; retract again"),
        "replaced": {"type": "array", "items": ref("Replacement"),
                     "description": "storage.layout = \"cqube\": objects of this upload that a "
                                    "later upload of the same name on the same day replaced "
                                    "(downloads of them answer 410 `object_replaced`)"},
    }, required=["upload_id", "status", "message", "route", "filename", "ingestion_type",
                 "ingestion_name", "program_name", "spec_version", "dry_run", "bytes", "sha256",
                 "total_rows", "valid_rows", "invalid_rows", "objects", "errors_sample", "error",
                 "started_at", "finished_at", "warnings"]),
    "UploadList": closed({"uploads": {"type": "array", "items": ref("Upload")},
                          "limit": COUNT, "offset": COUNT,
                          "total": dict(COUNT, description="uploads matching the filters")}),
    "CqubeSpec": {
        "type": "object", "required": ["program", "input"],
        "properties": {
            "program": dict(STRING, description="the spec's name (cQube `program`)"),
            "input": {"type": "object", "required": ["type", "properties"], "properties": {
                "type": {"const": "object"},
                "properties": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "type": {"oneOf": [
                            {"enum": ["string", "number", "integer", "boolean"]},
                            {"type": "array", "items": {"enum": ["string", "number", "integer",
                                                                 "boolean", "null"]}}]},
                        "shouldnotnull": BOOLEAN, "shouldNotNull": BOOLEAN,
                        "unique": BOOLEAN, "format": STRING, "enum": {"type": "array"},
                        "const": {}, "minimum": NUMBER, "maximum": NUMBER,
                        "exclusiveMinimum": NUMBER, "exclusiveMaximum": NUMBER,
                        "multipleOf": NUMBER, "minLength": INTEGER, "maxLength": INTEGER,
                        "pattern": STRING}}},
                "additionalProperties": dict(BOOLEAN, description="false: columns the spec "
                                             "does not declare refuse the file"),
                "required": {"type": "array", "items": STRING}}},
        },
        "description": "A cQube spec body. Keywords the translator cannot honour are refused "
                       "(400 `invalid_spec`), never dropped."},
    "CerberusSpec": closed({"cerberus": {"type": "object", "description": "a Cerberus schema: "
                                         "`{<column>: {<rule>: <value>}}`"}}),
    "SpecSummary": closed(SPEC_FIELDS),
    "Spec": closed(dict(SPEC_FIELDS, cerberus={"type": "object"},
                        source=nullable({"type": "object"})),
                   description="One spec version with its Cerberus schema and the original body "
                               "(null for a native Cerberus spec)."),
    "SpecStored": closed({"message": STRING, "created": dict(BOOLEAN, description="false for "
                                                             "an identical re-post"),
                          "spec": ref("Spec")}),
    "SpecList": closed({"specs": {"type": "array", "items": ref("SpecSummary")}}),
    "SpecVersions": closed({"kind": SPEC_KIND, "name": STRING, "latest": ref("Spec"),
                            "versions": {"type": "array", "items": {"anyOf": [
                                ref("SpecSummary"), ref("Spec")]}},
                            "next_before": nullable({"type": "integer", "description": "`before` "
                                                     "of the next page; null on the last"})}),
    "ConsoleSettings": closed({
        "open_token_endpoint": dict(BOOLEAN, description="tokens without credentials (dev)"),
        "resumable": dict(BOOLEAN, description="`/api/ingestion/resumable` (tus) is served"),
        "processing": dict(BOOLEAN, description="cQube processing (`/api/processing`) is on")}),
    "Health": closed({"status": {"const": "ok"}, "version": STRING, "schema_version": INTEGER}),
    "Ready": closed({"status": {"enum": ["ready", "not_ready", "draining"]},
                     "checks": closed({"database": STRING, "storage": STRING},
                                      description="`ok` or the error code of the check")}),
    "Plugins": closed({
        "plugins": {"type": "array", "items": closed({
            "name": STRING, "source": {"enum": ["builtin", "entry_point", "file"]},
            "version": nullable(STRING), "hooks": {"type": "array", "items": STRING},
            "program_types": {"type": "array", "items": STRING}})},
        "program_types": {"type": "array", "items": closed({
            "name": STRING, "route": STRING, "spec_kind": nullable(STRING),
            "file_kinds": {"type": "array", "items": STRING}, "description": nullable(STRING),
            "plugin": nullable(STRING)})},
        "cerberus_extensions": closed({k: {"type": "array", "items": STRING}
                                       for k in ("rules", "types", "coercers")}),
    }),
    # Swagger UI sends the form's fields in this order and pre-fills each with its example (a
    # field without one gets the text "string"): options first, the file last, so that what the
    # docs page shows can be executed as is. max_error_rate and encoding are query parameters
    # there (they also work as form fields placed before the file).
    "UploadForm": {
        "type": "object", "required": ["ingestion_type", "ingestion_name", "file"],
        "properties": {
            "ingestion_type": dict(STRING, enum=["event", "dimension", "dataset"],
                                   example="event", description="which spec kind validates it"),
            "ingestion_name": dict(STRING, example="teacherspresent",
                                   description="the spec name (cQube `program`)"),
            "program_name": dict(STRING, example="school-attendance",
                                 description="output folder; not needed for dimension"),
            "dry_run": dict(STRING, enum=["false", "true"], example="false",
                            description="`true`: validate and report, write nothing"),
            "file": {"type": "string", "contentMediaType": "application/octet-stream",
                     "description": "the data file (.csv), streamed; after the fields above"},
        }},
    "NationalUploadForm": {
        "type": "object", "required": ["file"],
        "properties": {
            "dry_run": dict(STRING, enum=["false", "true"], example="false",
                            description="`true`: validate and report, write nothing"),
            "file": {"type": "string", "contentMediaType": "application/octet-stream",
                     "description": "a ZIP of `<name>.csv` files, streamed"},
        }},
}

# A listing leaves the row errors out (``GET .../uploads/{id}`` has them): a page stays small.
SCHEMAS["UploadSummary"] = dict(
    SCHEMAS["Upload"], description="An upload in a listing: without `errors_sample`.",
    required=[r for r in SCHEMAS["Upload"]["required"] if r != "errors_sample"])
SCHEMAS["UploadList"]["properties"]["uploads"]["items"] = ref("UploadSummary")
