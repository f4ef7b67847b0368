"""Every hook a plugin can implement. Hooks are called with keyword arguments only, and an
implementation may accept fewer arguments than its spec, so hooks can grow without breaking plugins.

Implement them with ``from ingest_server import hookimpl``. Row-level hooks (``check_row``,
``transform_row``, ``output_header``) run in the validation worker processes, which load the same
plugins: keep them free of shared state. The context arguments are the upload's
``program_type`` (its ``ingestion_type``, e.g. "event"), ``ingestion_name`` (the spec name),
``program`` (``program_name``, or None) and ``header`` (the file's column names).
"""

import pluggy

hookspec = pluggy.HookspecMarker("ingest_server")


@hookspec
def register_program_types():
    """At start-up: return a list of ``ingest_server.plugins.programs.ProgramType``: ``name`` (the
    ``ingestion_type`` clients send), ``route`` (``new_programs`` for CSV, ``national_programs``
    for ZIP), ``spec_kind`` (which spec kind validates it), ``valid_key``/``error_key`` object key
    templates using ``{program}``, ``{name}``, ``{date}``, ``{upload_id}``, ``file_kinds``,
    ``needs_program``, ``allow_unknown_columns`` (unknown columns pass through unchecked). A
    duplicate name stops start-up."""


@hookspec
def register_cerberus_extensions():
    """At start-up and in each worker: return an ``ingest_server.validation.Extensions`` of custom
    Cerberus rules ``{name: (check(constraint, value) -> message | None, rule_schema)}`` (a message
    is a row error with code ``custom:<name>``), types ``{name: predicate(value) -> bool}`` and
    coercers ``{name: coerce(text) -> value}`` (return the text unchanged when it does not parse:
    the ``type`` rule then reports ``type_error``). Usable in stored specs (``PUT
    /api/specs/{kind}/{name}`` with ``{"cerberus": {...}}``) and compiled by the engine."""


@hookspec
def check_header(program_type, ingestion_name, program, header):
    """Once per CSV, before any row is read: return a list of ``(code, message)`` file-level
    errors (empty or None when fine). Any error rejects the whole file: HTTP 400, ``error.code``
    the first code, all of them in ``details.problems``; nothing is written."""


@hookspec
def wants_rows(program_type, ingestion_name, program, header):
    """Once per CSV, before any row: return False to skip this plugin's ``check_row`` and
    ``transform_row`` for the file, so a plugin for one programme costs the others nothing per
    row (anything else: the row hooks run)."""


@hookspec
def check_row(program_type, ingestion_name, program, header, row, values):
    """For each row that passed the schema checks: return a list of ``(column, code, message)``
    row errors (``column`` None for the whole row); they go into the same error file and
    ``errors_sample`` as schema errors, with the line number. ``row`` is the raw cells; ``values``
    a read-only mapping of each column to its value coerced as the spec says (int, float, bool,
    date, ...; text for uncoerced columns; None for a blank nullable cell)."""


@hookspec(firstresult=True)
def output_header(program_type, ingestion_name, program, header):
    """Once per file: return the column names of the valid output when ``transform_row`` changes
    the columns, else None. The first plugin returning a header wins."""


@hookspec
def transform_row(program_type, ingestion_name, program, header, row, values):
    """For each valid row before it is written: return the cells to write (one per output header
    column, written with ``str()``) or None to leave it as it is. Transforms chain: each gets the
    previous one's ``row``; ``values`` are always the original row's."""


@hookspec
def upload_finished(upload):
    """After every upload, whatever its outcome (uploaded, rejected, failed): ``upload`` is the
    upload's JSON summary as the API answers it (a copy of its own). Runs as background work
    once the answer is known: the client does not wait for it, and at shutdown the server waits
    for the notifications still running (``server.shutdown_timeout_s``). Notify or audit; may
    return an awaitable, which the core awaits (30 s at most). An exception or timeout is
    logged and never changes the upload's outcome."""
