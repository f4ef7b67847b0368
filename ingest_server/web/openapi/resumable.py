"""The OpenAPI operations of resumable uploads (tus 1.0 at ``/api/ingestion/resumable``)."""

from __future__ import annotations

from .ops import (DB_ERRORS, FILE_ERRORS, FORM_ERRORS, READING_ERRORS, STORAGE_ERRORS, ZIP_ERRORS,
                  Op, merge, codes, param, path_param)

TUS_ID = path_param("id", "the upload URL's last segment (from `Location`)")
TUS_RESUMABLE = param("Tus-Resumable", "header", "tus protocol version", {"const": "1.0.0"},
                      required=True)
TUS_GONE = codes("upload_not_found", "upload_terminated", "upload_expired",
                 "unsupported_tus_version")
# What sending bytes can answer (a PATCH, or a creation with a body): the one-shot routes'
# data errors come from the PATCH that completes the upload.
PATCH_ERRORS = codes("missing_header", "invalid_header", "connection_lost",
                     "unsupported_checksum_algorithm", "invalid_checksum", *FILE_ERRORS,
                     *READING_ERRORS, *ZIP_ERRORS, "spec_not_found", "body_timeout",
                     "upload_length_exceeded", "unsupported_media_type", "checksum_mismatch", "worker_crashed",
                     "plugin_error")
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
                   "(creation-with-upload): the answers and codes of PATCH then apply too. "
                   "Per-client quotas (`[quotas]`): 429 `too_many_open_uploads` past "
                   "`resumable_open_per_client` unfinished uploads, 413 `upload_quota_exceeded` "
                   "past `resumable_bytes_per_client` declared bytes; on local storage 507 "
                   "`insufficient_storage` when the bytes still to come of every open upload "
                   "would not fit on the disk.",
       parameters=[TUS_RESUMABLE, param("Upload-Length", "header", "the file's size in bytes",
                                        {"type": "integer", "minimum": 0}, required=True),
                   param("Upload-Metadata", "header", "`key base64,key base64,...`")],
       body={"required": False, "content": {"application/offset+octet-stream": {
           "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
       responses={201: {"description": "created; the upload URL is in `Location`"}},
       errors=merge(FORM_ERRORS, codes("missing_header", "invalid_header", "invalid_metadata",
                                        "defer_length_unsupported", "spec_not_found",
                                        "unsupported_tus_version", "upload_too_large",
                                        "unsupported_file_type", "unsupported_media_type",
                                        "unknown_encoding", "too_many_open_uploads",
                                        "upload_quota_exceeded", "insufficient_storage"),
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
       errors=merge(TUS_GONE, DB_ERRORS)),
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
       errors=merge(TUS_GONE, PATCH_ERRORS, codes("offset_mismatch", "upload_locked"),
                     STORAGE_ERRORS, DB_ERRORS)),
    Op("delete", RESUMABLE + "/{id}", "Terminate a resumable upload", "resumable", "ingest",
       description="The staged bytes go at once; the URL then answers 410.",
       parameters=[TUS_ID, TUS_RESUMABLE],
       responses={204: {"description": "terminated"}},
       errors=merge(TUS_GONE, codes("upload_locked"), STORAGE_ERRORS, DB_ERRORS)),
]
