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
    """At start-up: return a list of ``ingest_server.programs.ProgramType`` (name, route, spec kind,
    object key templates, file kinds, whether unknown columns are allowed). Names must be unique."""


@hookspec
def register_cerberus_extensions():
    """At start-up and in each worker: return an ``ingest_server.validation.Extensions`` of custom
    Cerberus rules ``{name: (check(constraint, value) -> message | None, rule_schema)}``, types
    ``{name: predicate(value) -> bool}`` and coercers ``{name: coerce(value) -> value}``."""


@hookspec
def check_header(program_type, ingestion_name, program, header):
    """Before any row is read: return a list of ``(code, message)`` file-level errors (empty or
    None when fine). Any error rejects the whole file (HTTP 400, nothing written)."""


@hookspec
def wants_rows(program_type, ingestion_name, program, header):
    """Once per file: return False to skip this plugin's row hooks for the file (saves their per-row cost)."""


@hookspec
def check_row(program_type, ingestion_name, program, header, row, values):
    """After a row passed the schema checks: return a list of ``(column, code, message)`` row
    errors (``column`` None for the whole row). ``row`` is the raw cells; ``values`` maps each
    column to its value coerced as the spec says (int, float, date, ...; text otherwise)."""


@hookspec(firstresult=True)
def output_header(program_type, ingestion_name, program, header):
    """Once per file: return the column names of the valid output when ``transform_row`` changes
    the columns, else None. The first plugin returning a header wins."""


@hookspec
def transform_row(program_type, ingestion_name, program, header, row, values):
    """For each valid row before it is written: return the cells to write (one per output header
    column) or None to leave it as it is. Transforms chain: each gets the previous one's ``row``;
    ``values`` are always the original row's."""


@hookspec
def upload_finished(upload):
    """After an upload ends, whatever its outcome: ``upload`` is the upload's JSON summary (as
    in the API answer). Runs as background work once the answer is known (drained at shutdown).
    Notify or audit; may return an awaitable, which the core awaits with a timeout. An exception
    or timeout is logged and never changes the upload's outcome."""
