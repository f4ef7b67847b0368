"""Every hook a plugin can implement. Hooks are called with keyword arguments only, and an
implementation may accept fewer arguments than its spec, so hooks can grow without breaking plugins.

Implement them with ``from ingest_server import hookimpl``. Row-level hooks (``check_row``,
``transform_row``) run in the validation worker processes, which load the same plugins.
"""

import pluggy

hookspec = pluggy.HookspecMarker("ingest_server")


@hookspec
def register_program_types():
    """At start-up: return a list of :class:`ingest_server.programs.ProgramType` this plugin provides."""


@hookspec
def register_cerberus_extensions():
    """At start-up and in each worker: return an ``Extensions`` (custom rules, types, coercers) for specs."""


@hookspec
def check_header(program_type, ingestion_name, program, header):
    """Before any row is read: return a list of ``(code, message)`` file-level errors (empty when fine)."""


@hookspec
def check_row(program_type, ingestion_name, program, header, row, values):
    """After the schema checks pass for a row: return a list of ``(column, code, message)`` row errors."""


@hookspec(firstresult=True)
def output_header(program_type, ingestion_name, program, header):
    """Once per file: return the header of the valid output when ``transform_row`` changes the columns."""


@hookspec
def transform_row(program_type, ingestion_name, program, header, row):
    """For each valid row before it is written: return the row (a list of strings) to write, or None."""


@hookspec
def upload_finished(upload):
    """After an upload ends (any outcome): notify or audit; may return an awaitable the core awaits."""
