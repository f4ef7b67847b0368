"""OpenAPI operations of cQube's routes we added (JSON rows, validate, getRawData, signed links)
and what the cqube profile answers instead of the native shapes. Imported by ``openapi.py``,
built from the same blocks (``ops``)."""

from __future__ import annotations

from typing import Any

from .ops import DB_ERRORS, FILE_ERRORS, JSON, STORAGE_ERRORS, Op, merge, codes, json_body, param
from .schemas import COUNT, STRING, closed, ref

ROW_ERRORS = codes("invalid_json", "invalid_body", "missing_field", "invalid_field",
                   "invalid_name", "invalid_idempotency_key", *FILE_ERRORS, "spec_not_found",
                   "upload_in_progress", "key_conflict", "body_too_large", "upload_too_large",
                   "worker_crashed", "plugin_error")

JSON_BODY_LIMIT = ("At most `limits.max_json_bytes` bytes per body (default 16 MiB = 16777216): "
                   "past it 413 `body_too_large`, the rest unread. The body is spooled to disk "
                   "and read one row at a time, so a server holds about the body's size per "
                   "request, never its parsed form; nesting deeper than 64 levels, `NaN`, "
                   "`Infinity`, out-of-range numbers and lone surrogate escapes are 400 "
                   "`invalid_json`.")

SCHEMAS: dict[str, Any] = {
    "JsonRows": {
        "type": "object", "description": "`<kind>_name` (the spec name), `program_name` (output "
        "folder, optional) and `<kind>`: the rows, one object per row, keyed by column",
        "properties": {"event_name": STRING, "dimension_name": STRING, "dataset_name": STRING,
                       "program_name": STRING,
                       **{k: {"type": "array", "minItems": 1, "items": {"type": "object"}}
                          for k in ("event", "dimension", "dataset")}}},
    "JsonRowsResult": {
        "type": "object", "required": ["message", "invalid_record_count", "valid_record_count"],
        "description": "cQube's answer; the upload's own fields (schema `Upload`, its `message` "
                       "as `detail`) beside it",
        "properties": {"message": STRING, "invalid_record_count": COUNT,
                       "valid_record_count": COUNT, "upload_id": STRING, "detail": STRING}},
    "Validated": {
        "type": "object", "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": {"type": "object"},
                                  "description": "row errors (`RowError`) or the grammar's / "
                                                 "file's error; empty when valid"},
                       "total_rows": COUNT, "valid_rows": COUNT, "invalid_rows": COUNT,
                       "truncated": {"type": "boolean"}}},
    "RawDataRequest": closed({"program_names": {"type": "array", "minItems": 1, "maxItems": 100,
                                                "items": STRING}}),
    "RawData": closed({"code": {"const": 200}, "data": {"type": "array", "items": closed({
        "program_name": STRING, "urls": {"type": "array", "items": STRING}})}}),
}


def _rows_op(kind: str) -> Op:
    return Op("post", f"/api/ingestion/{kind}", f"Upload {kind} rows as JSON", "ingestion",
              "ingest",
              description=f"cQube's JSON-row route: `{{\"{kind}_name\", \"program_name\"?, "
                          f"\"{kind}\": [{{col: value}}, …]}}`. The rows are checked like a CSV's "
                          "(same spec, same checks) and land under the same keys with the same "
                          "upload record. " + JSON_BODY_LIMIT,
              body={"required": True, "description": JSON_BODY_LIMIT,
                    "content": {JSON: {"schema": ref("JsonRows")}}},
              parameters=[param("Idempotency-Key", "header", "repeat a request safely")],
              responses={200: json_body(ref("JsonRowsResult"), "the outcome")},
              errors=merge(ROW_ERRORS, STORAGE_ERRORS, DB_ERRORS))


OPERATIONS: list[Op] = [
    *(_rows_op(kind) for kind in ("event", "dimension", "dataset")),
    Op("post", "/api/ingestion/validate", "Check a grammar, or data against it (writes nothing)",
       "ingestion", "spec",
       description="cQube's data debugger. multipart: `type` (`event-grammar`, `event-data`, "
                   "`dimension-grammar`, `dimension-data`), `grammar` (a cQube spec JSON file) "
                   "and, for data, `data` (a CSV, streamed). Nothing is stored. Open without a "
                   "token when `auth.open_spec_api = true`.",
       body={"required": True, "content": {"multipart/form-data": {"schema": {
           "type": "object", "required": ["type", "grammar"], "properties": {
               "type": {"type": "string", "enum": ["event-grammar", "event-data",
                                                   "dimension-grammar", "dimension-data"]},
               "grammar": {"type": "string", "contentMediaType": "application/json"},
               "data": {"type": "string", "contentMediaType": "text/csv"}}}}}},
       responses={201: json_body(ref("Validated"), "the errors (empty: valid)")},
       errors=codes("invalid_field", "missing_field", "invalid_spec", "not_multipart",
                     "bad_multipart", "too_many_parts", "upload_too_large")),
    Op("post", "/api/ingestion/getRawData", "Download links of today's emission files",
       "ingestion", "rawdata",
       description="For each programme, links to the emission files national uploads landed "
                   "today, whichever client sent them: presigned GET URLs on S3; on local "
                   "storage signed links to `GET /api/ingestion/raw` valid for an hour, built on "
                   "`server.public_url` or else a plain `host[:port]` Host header (any other "
                   "Host: 400 `invalid_host`). The `rawdata` scope is the one exception to "
                   "per-client isolation, granted per client; in the cqube profile `read` is "
                   "enough (cQube guards this route like its file-status).",
       body={"required": True, "content": {JSON: {"schema": ref("RawDataRequest")}}},
       responses={200: json_body(ref("RawData"), "the links per programme")},
       errors=merge(codes("invalid_json", "invalid_field", "body_too_large", "invalid_host"),
                     DB_ERRORS, STORAGE_ERRORS)),
    Op("get", "/api/ingestion/raw", "One emission file behind a signed link", "ingestion", None,
       description="The links `getRawData` gives on local storage: the HMAC signature of the key "
                   "and expiry is the authorisation.",
       parameters=[param("key", "query", "object key", required=True),
                   param("expires", "query", "Unix time the link expires", required=True),
                   param("signature", "query", "HMAC-SHA256, hex", required=True)],
       responses={200: {"description": "the file",
                        "content": {"text/csv": {"schema": {"type": "string"}}}}},
       errors=merge(codes("invalid_key", "invalid_signature", "link_expired",
                           "object_not_found"), STORAGE_ERRORS)),
]

CQUBE_PROFILE = """

**The cqube profile** (`compat.profile = "cqube"`, env `INGEST_COMPAT_PROFILE=cqube`) answers
cQube's routes (`/api/ingestion/*`, `/api/spec/*`) as cQube does, for its clients, instead of the
shapes documented per operation here:

| situation | cqube profile answer |
| --- | --- |
| no token on a guarded route | 403 `{"statusCode":403,"message":"Forbidden resource","error":"Forbidden"}` (a bad token: 401) |
| `new_programs` upload with valid form fields | 200 `{"message":"File is being processed", …}` whatever the data (no spec, missing column, every row bad); our upload fields beside it, the outcome in `file_status` |
| `national_programs` | 200 `File is being processed`; no spec for the ZIP's programme: 400 `{"message":"Schema doesn't exists for this program"}` |
| missing / unknown form field | 400 `{"message":[<AJV error>]}` |
| no file part | 400 `{"message":"File is required"}` |
| method or path not served | 404 `{"statusCode":404,"message":"Cannot GET /<path>","error":"Not Found"}` |
| `file-status` (all three query fields required) | 200 `{"response":{pid, file_name, file_status, created_at, total_data_count, processed_data_count, error_data_count}}`; nothing: 400 `{"message":"No records found"}` |
| `POST /api/spec/{kind}` | 200 `{"message":"Event grammar created successfully","program":…}` (`Dimension spec created successfully` + `dimension_name`); identical re-post: 400 `Program already exists` / `Dimension spec already exists`; a failing body: 400 `{"message":[<AJV errors>]}` |
| other errors | `{"statusCode","message","error"}` with our `code` and `details` beside them |

`GET /api/ingestion/generatejwt` answers the bare token as `text/plain` in both profiles unless
`Accept: application/json`."""
