"""OpenAPI operations of cQube processing (DESIGN.md §12): grammars, programmes, and an upload's
unknown keys. Imported by ``document.py``, built from the same blocks (``ops``)."""

from __future__ import annotations

from .ops import DB_ERRORS, JSON, Op, codes, json_body, merge, param, path_param

CSV_BODY = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
OBJECT = {"type": "object"}
OFF = codes("processing_disabled")
DIM = path_param("dim", "the dimension (cQube's `<dim>-dimension.grammar.csv`)")
PROGRAM = path_param("program", "the programme folder (e.g. `school-attendance`)")
EVENT = path_param("event", "the event (cQube's `<event>-event.grammar.csv`)")
PUT_ERRORS = merge(OFF, DB_ERRORS, codes("invalid_grammar", "grammar_conflict", "body_too_large",
                                         "unsupported_media_type", "not_text"))
GET_ERRORS = merge(OFF, DB_ERRORS, codes("grammar_not_found"))
REGISTERED = {201: json_body(OBJECT, "registered (a new version)"),
              200: json_body(OBJECT, "the same file again: unchanged")}

OPERATIONS: list[Op] = [
    Op("get", "/api/processing/grammars", "Every registered grammar and programme",
       "processing", "read",
       description="Dimensions with their key column, row count and last load; event grammars "
                   "with their dimension links; programmes.",
       responses={200: json_body(OBJECT, "the registry")}, errors=merge(OFF, DB_ERRORS)),
    Op("put", "/api/processing/grammars/dimensions/{dim}", "Register a dimension grammar",
       "processing", "spec",
       description="cQube's 3-row dimension grammar as sent (`text/csv`). Creates "
                   "`dimensions.<dim>` and its index as cQube does, the "
                   "`spec.\"DimensionGrammar\"` row, and the dimension's ingestion spec. A "
                   "grammar cQube could not use: 400 `invalid_grammar` naming row and column. A "
                   "changed grammar that changes the table: 409 `grammar_conflict` with the "
                   "changes, unless `?migrate=true` (altered, rows kept).",
       parameters=[DIM, param("migrate", "query", "alter the table of a changed grammar",
                              {"type": "string", "enum": ["true", "false"]})],
       body=CSV_BODY, responses=REGISTERED, errors=PUT_ERRORS),
    Op("get", "/api/processing/grammars/dimensions/{dim}", "A dimension grammar and its versions",
       "processing", "read", parameters=[DIM],
       responses={200: json_body(OBJECT, "columns, key column, versions")}, errors=GET_ERRORS),
    Op("put", "/api/processing/grammars/events/{program}/{event}", "Register an event grammar",
       "processing", "spec",
       description="cQube's 5-row event grammar as sent (`text/csv`). Its dimensions must be "
                   "registered and each key column unique there. It is also the event's "
                   "ingestion spec (types from row 3, every column required and not blank): an "
                   "existing spec that disagrees is a 409 `grammar_conflict` naming the columns.",
       parameters=[PROGRAM, EVENT], body=CSV_BODY, responses=REGISTERED, errors=PUT_ERRORS),
    Op("get", "/api/processing/grammars/events/{program}/{event}",
       "An event grammar and its versions", "processing", "read", parameters=[PROGRAM, EVENT],
       responses={200: json_body(OBJECT, "columns, versions")}, errors=GET_ERRORS),
    Op("put", "/api/processing/programs/{program}", "Register a programme", "processing", "spec",
       description="cQube's `config.json` entry: `{\"namespace\": \"sch_att\", \"whitelisted\": "
                   "[\"state,grade\", …]}`.",
       parameters=[PROGRAM],
       body={"required": True, "content": {JSON: {"schema": {
           "type": "object", "required": ["namespace"],
           "properties": {"namespace": {"type": "string"},
                          "whitelisted": {"type": "array", "items": {"type": "string"}}}}}}},
       responses=REGISTERED,
       errors=merge(PUT_ERRORS, codes("invalid_json"))),
    Op("get", "/api/processing/programs/{program}", "A programme and its versions",
       "processing", "read", parameters=[PROGRAM],
       description="With the datasets step: `datasets: {last_processed_at, tables: [{name, "
                   "table, rows, grain, compound}]}`.",
       responses={200: json_body(OBJECT, "namespace, whitelisted, versions, datasets")},
       errors=GET_ERRORS),
    Op("post", "/api/processing/programs/{program}/rebuild",
       "Rebuild a programme's dataset tables", "processing", "spec",
       description="Empties the programme's dataset tables and applies every landed, "
                   "unretracted event upload again, in one transaction (readers see the old "
                   "tables until it commits). Answers `{program, uploads, tables, groups}`.",
       parameters=[PROGRAM],
       responses={200: json_body(OBJECT, "program, uploads, tables, groups")},
       errors=merge(GET_ERRORS, codes("program_not_registered", "storage_error"))),
    Op("get", "/api/processing/uploads/{upload_id}/references",
       "An upload's unknown keys, by dimension", "processing", "read",
       description="The `unknown_reference` row errors of an event upload grouped by dimension: "
                   "rows, distinct unknown keys (exact up to 100000), examples. Read from the "
                   "upload's error file.",
       parameters=[path_param("upload_id", "the upload")],
       responses={200: json_body(OBJECT, "the groups")},
       errors=merge(OFF, DB_ERRORS, codes("upload_not_found", "storage_error"))),
]
