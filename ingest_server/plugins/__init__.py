"""The plugin machinery: the hooks (``hookspecs``), loading plugins and calling hooks
(``loading``), checking a plugin's hook implementations (``check``), program types
(``programs``: what a plugin's ``program_types`` hook returns) and the built-in program types
(``builtin``).

What a plugin imports: ``from ingest_server import hookimpl`` and
``from ingest_server.plugins.programs import ProgramType``.
"""
