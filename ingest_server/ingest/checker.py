"""The row checker used by the CSV workers: the compiled spec plus the plugins' row hooks.

Built once per worker process per (spec version, header) from picklable arguments, so worker
processes compile the schema themselves instead of receiving closures.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Sequence

from ..plugins import load_registry
from ..plugins import PluginError
from ..validation import Extensions, get_compiled

log = logging.getLogger("ingest_server.ingest")


@lru_cache(maxsize=8)
def plugin_extensions(plugins_dir: str | None) -> Extensions | None:
    """Cerberus extensions from every plugin's ``register_cerberus_extensions``, merged once."""
    pm = load_registry(plugins_dir).pm
    merged: dict[str, dict] = {"rules": {}, "types": {}, "coercers": {}}
    owners: dict[tuple[str, str], str] = {}
    for impl in pm.hook.register_cerberus_extensions.get_hookimpls():
        ext = impl.function()
        if ext is None:
            continue
        for kind, table in merged.items():
            for name, value in getattr(ext, kind).items():
                if (kind, name) in owners:
                    raise PluginError(f"Cerberus {kind[:-1]} '{name}' is registered twice: by "
                                      f"{owners[kind, name]} and by {impl.plugin_name}")
                owners[kind, name] = impl.plugin_name
                table[name] = value
    return Extensions(**merged) if owners else None


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


class PipelineChecker:
    """``check(row)`` → row errors; ``transform(row)`` → the row to write; ``output_header``."""

    def __init__(self, *, plugins_dir: str | None, schema_key: str, schema: dict,
                 header: Sequence[str], program_type: str, ingestion_name: str,
                 program: str | None) -> None:
        registry = load_registry(plugins_dir)
        compiled = get_compiled(schema_key, schema, plugin_extensions(plugins_dir))
        self.header = list(header)
        self._rows = compiled.bind(self.header)
        self._context = {"program_type": program_type, "ingestion_name": ingestion_name,
                         "program": program, "header": self.header}
        hook = registry.pm.hook
        self._check_impls = hook.check_row.get_hookimpls()
        self._transform_impls = hook.transform_row.get_hookimpls()
        declared = hook.output_header(**self._context)
        self.output_header = list(declared) if declared else list(self.header)
        self._failed_plugins: set[str] = set()
        self._transformed: tuple[list[str], list[str]] | None = None
        self._current: Any = None

    def check(self, row: list[str]) -> list[tuple[str | None, str, str]]:
        errors = self._rows.check(row)
        if errors or not (self._check_impls or self._transform_impls):
            return errors
        kwargs = dict(self._context, row=row, values=dict(zip(self.header, row)))
        for impl in self._check_impls:
            try:
                found = _call(impl, kwargs)
            except Exception as e:  # a plugin bug costs a row, never the upload
                errors.append((None, "plugin_error", self._plugin_failed(impl, e)))
                continue
            errors.extend(found or ())
        if not errors and self._transform_impls:
            # Transform here, so that a failing transform makes the row an error like any other.
            try:
                self._transformed = (row, self._apply_transforms(row))
            except Exception as e:
                errors.append((None, "plugin_error", self._plugin_failed(self._current, e)))
        return errors

    def transform(self, row: list[str]) -> list[str]:
        """The row to write for a row that passed ``check`` (transformed during the check)."""
        if self._transformed is not None and self._transformed[0] is row:
            return self._transformed[1]
        return row

    def _apply_transforms(self, row: list[str]) -> list[str]:
        for impl in self._transform_impls:
            self._current = impl
            changed = _call(impl, dict(self._context, row=row))
            if changed is not None:
                row = [str(v) for v in changed]
        return row

    def _plugin_failed(self, impl: Any, e: Exception) -> str:
        if impl.plugin_name not in self._failed_plugins:
            self._failed_plugins.add(impl.plugin_name)
            log.error("plugin %s raised %s in a row hook (logged once per file)",
                      impl.plugin_name, e.__class__.__name__, exc_info=e)
        return f"plugin {impl.plugin_name} failed on this row: {e.__class__.__name__}: {e}"


def build_checker(plugins_dir: str | None, schema_key: str, schema: dict, header: Sequence[str],
                  program_type: str, ingestion_name: str, program: str | None) -> PipelineChecker:
    """Top-level, picklable factory: what the CSV workers call once per spec version and header."""
    return PipelineChecker(plugins_dir=plugins_dir, schema_key=schema_key, schema=schema,
                           header=header, program_type=program_type,
                           ingestion_name=ingestion_name, program=program)
