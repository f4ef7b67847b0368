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
UPLOAD_STATUS = {"type": "string", "enum": ["receiving", "uploaded", "rejected", "failed"],
                 "description": "`receiving` while in progress; `uploaded`: valid rows landed; "
                                "`rejected`: the file (or its error rate) was refused, nothing "
                                "written; `failed`: a server-side failure, nothing written"}
KEY_OR_KEYS = {"anyOf": [STRING, {"type": "array", "items": STRING}, {"type": "null"}],
               "description": "object key; a list of keys for a national ZIP (one per member)"}

SPEC_FIELDS: dict[str, Schema] = {
    "kind": SPEC_KIND, "name": STRING, "version": {"type": "integer", "minimum": 1},
    "sha256": STRING, "source_format": {"type": "string", "enum": ["cqube", "cerberus"]},
    "created_at": nullable(dict(STRING, format="date-time")), "created_by": nullable(STRING),
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
        "error": ref("UploadError"),
        "started_at": dict(STRING, format="date-time"),
        "finished_at": nullable(dict(STRING, format="date-time")),
        "members": {"type": "array", "items": ref("Member")},
        "idempotent_replay": dict(BOOLEAN, description="true when this is the earlier answer "
                                  "for the same Idempotency-Key"),
    }, required=["upload_id", "status", "message", "route", "filename", "ingestion_type",
                 "ingestion_name", "program_name", "spec_version", "dry_run", "bytes", "sha256",
                 "total_rows", "valid_rows", "invalid_rows", "objects", "errors_sample", "error",
                 "started_at", "finished_at"]),
    "UploadList": closed({"uploads": {"type": "array", "items": ref("Upload")},
                          "limit": COUNT, "offset": COUNT}),
    "CqubeSpec": {
        "type": "object", "required": ["program", "input"],
        "properties": {
            "program": dict(STRING, description="the spec's name (cQube `program`)"),
            "input": {"type": "object", "required": ["type", "properties"], "properties": {
                "type": {"const": "object"},
                "properties": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {"type": {"enum": ["string", "number", "integer", "boolean"]},
                                   "shouldnotnull": BOOLEAN, "shouldNotNull": BOOLEAN,
                                   "unique": BOOLEAN, "format": STRING}}},
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
                            "versions": {"type": "array", "items": ref("SpecSummary")}}),
    "Health": closed({"status": {"const": "ok"}, "version": STRING}),
    "Ready": closed({"status": {"enum": ["ready", "not_ready"]},
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
    "UploadForm": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream",
                     "description": "the data file (streamed; fields may come before or after it)"},
            "ingestion_type": dict(STRING, description="`event`, `dimension` or `dataset` "
                                   "(new_programs)"),
            "ingestion_name": dict(STRING, description="the spec name (cQube `program`) "
                                   "(new_programs)"),
            "program_name": dict(STRING, description="output folder; not needed for dimension"),
            "dry_run": dict(STRING, description="`true`: validate and report, write nothing"),
            "max_error_rate": dict(STRING, description="0..1: above it the upload is rejected "
                                   "and nothing is written"),
            "encoding": dict(STRING, description="text encoding of the CSV (default UTF-8, BOM "
                             "stripped)"),
        }},
}

# A listing leaves the row errors out (``GET .../uploads/{id}`` has them): a page stays small.
SCHEMAS["UploadSummary"] = dict(
    SCHEMAS["Upload"], description="An upload in a listing: without `errors_sample`.",
    required=[r for r in SCHEMAS["Upload"]["required"] if r != "errors_sample"])
SCHEMAS["UploadList"]["properties"]["uploads"]["items"] = ref("UploadSummary")
