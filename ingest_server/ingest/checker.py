"""The row checker used by the CSV workers: the compiled spec plus the plugins' row hooks.

Built once per worker process per (spec version, header) from picklable arguments, so worker
processes compile the schema themselves instead of receiving closures. A plugin that raises or
returns something malformed in a row hook costs that row (``plugin_error``), never the upload.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..csvstream.worker import RewrittenRow
from ..plugins.loading import (ROW_ARGS, HookCall, PluginHookError, call_each, hook_calls,
                               load_registry, plugin_extensions, plugin_failed)
from ..validation import Extensions, get_compiled
from ..validation.compiler import RowTail
from ..validation.coercers import BUILTIN_COERCERS, FORMAT_COERCERS

if TYPE_CHECKING:
    from ..processing.rowcheck import ProcessingChecks

log = logging.getLogger("ingest_server.ingest")

RowError = tuple[str | None, str, str]
_AS_IS = RowTail((), {}, "(errs, row)")  # the spec's row check returning ``(errors, row)``


def _coercer(rules: Any, extensions: Extensions | None) -> Callable[[Any], Any] | None:
    """The spec's coercion of one column, as Cerberus applies it (None: the text is the value)."""
    coerce = rules.get("coerce") if isinstance(rules, Mapping) else None
    names = [coerce] if isinstance(coerce, str) else coerce
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    steps = []
    for name in names:
        if name in BUILTIN_COERCERS:
            fn = BUILTIN_COERCERS[name]
            # Like IngestValidator: date_format binds only when coerce is a single name.
            if isinstance(coerce, str) and name in FORMAT_COERCERS and "date_format" in rules:
                fn = functools.partial(fn, fmt=rules["date_format"])
        elif extensions is not None and name in extensions.coercers:
            fn = extensions.coercers[name]
        else:
            return None
        steps.append(fn)

    def run(value: Any) -> Any:
        for fn in steps:
            try:
                value = fn(value)
            except Exception:  # Cerberus accepted the row, so this is nullable's None: keep it
                break
        return value

    return run


class RowValues(Mapping):
    """One row's values by column, coerced as the spec coerces them, on first access only:
    a plugin that returns early for other programmes costs no coercion."""

    __slots__ = ("_row", "_index", "_coercers", "_cache")

    def __init__(self, row: list[str], index: dict[str, int],
                 coercers: dict[str, Callable[[Any], Any]]) -> None:
        # One per row: plain assignments and no cache until needed keep this cheap.
        self._row = row
        self._index = index
        self._coercers = coercers
        self._cache: dict[str, Any] | None = None

    def __getitem__(self, column: str) -> Any:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        elif column in cache:
            return cache[column]
        value = self._row[self._index[column]]
        coerce = self._coercers.get(column)
        value = cache[column] = coerce(value) if coerce else value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _row_errors(found: Any) -> list[RowError]:
    """A ``check_row`` result, checked for shape so a plugin bug cannot crash a worker."""
    out = []
    for item in found or ():
        column, code, message = item
        if not isinstance(code, str) or not code:
            raise TypeError(f"check_row returned an error without a code: {item!r}")
        out.append((None if column is None else str(column), code, str(message)))
    return out


def _keys_checked(errors: list[RowError], row: list[str], found: tuple[list[RowError], Any]
                  ) -> tuple[list[RowError], list[str]]:
    """A row's errors and row after its grammar checks found something (``RowProcessing``):
    their errors added, or the row with its keys landed as the dimension stores them."""
    extra, landed = found
    if extra:
        return [*errors, *extra], row
    if landed is not None and not errors:
        return errors, RewrittenRow(landed)
    return errors, row


class PipelineChecker:
    """``check(row)`` → ``(row errors, row to write)``; ``output_header``."""

    def __init__(self, *, plugins_dir: str | None, schema_key: str, schema: dict,
                 header: Sequence[str], program_type: str, ingestion_name: str,
                 program: str | None, allow_unknown: bool = False,
                 processing: ProcessingChecks | None = None) -> None:
        registry = load_registry(plugins_dir)
        extensions = plugin_extensions(plugins_dir)
        pt = registry.program_type(program_type)
        compiled = get_compiled(schema_key, schema, extensions,
                                allow_unknown=allow_unknown or bool(pt and pt.allow_unknown_columns))
        self.header = list(header)
        # A cQube grammar's checks (keys against the dimension tables, the date column) run at
        # the end of the spec's generated row check, in the same function.
        found = None
        if processing:  # loaded here: a worker checking other uploads never needs them
            from ..processing.rowcheck import RowProcessing  # noqa: PLC0415

            found = RowProcessing(processing, self.header, _keys_checked)
        self._check_row = compiled.bind(self.header, found.tail if found else _AS_IS).check
        # The worker asks which rows of a chunk the grammar's checks might not pass as they are
        # (``unsure``) and checks the others with ``check_known`` (csvstream.worker).
        self.unsure = found.unsure if found is not None else None
        if found is not None and found.tail_known is not None:
            self._check_known_row = compiled.bind(self.header, found.tail_known).check
        self._index = {name: i for i, name in enumerate(self.header)}
        self._coercers = {name: fn for name in self.header
                          if (fn := _coercer(schema.get(name), extensions)) is not None}
        self._context = {"program_type": program_type, "ingestion_name": ingestion_name,
                         "program": program, "header": self.header}
        hook = registry.pm.hook
        skip = self._plugins_skipping_rows(hook.wants_rows)
        # Compiled once per file, in pluggy's call order (see plugins.hook_calls).
        self._check_calls = [c for c in hook_calls(hook.check_row, self._context, ROW_ARGS)
                             if c.plugin not in skip]
        self._transform_calls = [c for c in hook_calls(hook.transform_row, self._context,
                                                       ROW_ARGS) if c.plugin not in skip]
        # Without row hooks a valid row is written as it arrived (csvstream.worker): nothing
        # here changes a row in place.
        self.rows_unaltered = not (self._check_calls or self._transform_calls)
        if self.rows_unaltered:  # the spec's row check is the whole check: one call a row
            self.check = self._check_row
            if found is not None and found.tail_known is not None:
                self.check_known = self._check_known_row
        try:
            declared = next(call_each(hook.output_header, **self._context), (None, None))[1]
        except PluginHookError as e:  # the server's fault, not the file's: no row can be written
            raise plugin_failed(e, "declaring the output header") from None
        self.output_header = [str(c) for c in declared] if declared else list(self.header)
        # The datasets' partial aggregates of each chunk's valid rows (csvstream.worker).
        self.summarise = None
        if processing:
            from ..processing.summary import dataset_summary  # noqa: PLC0415

            self.summarise = dataset_summary(processing, self.output_header)
        self._failed_plugins: set[str] = set()  # only decides what is logged

    def _plugins_skipping_rows(self, caller: Any) -> set[str]:
        """Plugins whose ``wants_rows`` says no for this file: their row hooks are not called."""
        skip = set()
        for step in hook_calls(caller, self._context):
            try:
                wanted = step.call()
            except Exception as e:  # a broken plugin keeps its row hooks: safer than skipping checks
                log.error("plugin %s: wants_rows failed", step.plugin, exc_info=e)
                continue
            if wanted is False:
                skip.add(step.plugin)
        return skip

    def check(self, row: list[str]) -> tuple[list[RowError], list[str]]:
        """``(errors, out_row)``: the row's errors, and the row to write when there are none.

        Stateless: one checker serves every upload of the process at once (threads included),
        so nothing about a row is kept between calls."""
        errors, row = self._check_row(row)
        if errors or not (self._check_calls or self._transform_calls):
            return errors, row
        return self._plugins(row, errors)

    def check_known(self, row: list[str]) -> tuple[list[RowError], list[str]]:
        """``check(row)`` for a row ``unsure`` did not name: its keys of large dimensions are
        stored keys as written, the other grammar checks are made here."""
        errors, row = self._check_known_row(row)
        if errors or not (self._check_calls or self._transform_calls):
            return errors, row
        return self._plugins(row, errors)

    def _plugins(self, row: list[str], errors: list[RowError]
                 ) -> tuple[list[RowError], list[str]]:
        """The plugins' row checks and transforms of a row found fine so far."""
        values = RowValues(row, self._index, self._coercers)
        for step in self._check_calls:
            try:
                found = step.call(row, values)
                if found:
                    if step.through_pluggy:  # pluggy's list of every implementation's answer
                        found = [error for answer in found for error in answer or ()]
                    errors.extend(_row_errors(found))
            except Exception as e:  # a plugin bug costs a row, never the upload
                errors.append((None, "plugin_error", self._plugin_failed(step, e)))
        out = row
        rewritten = type(row) is RewrittenRow
        if not errors and self._transform_calls:
            # Transform here, so that a failing transform makes the row an error like any other.
            # Transforms chain, each getting the row the one before it returned.
            step = None
            try:
                for step in self._transform_calls:
                    changed = step.call(out, values)
                    if changed is not None:
                        out = ["" if v is None else str(v) for v in changed]
                if len(out) != len(self.output_header):
                    raise ValueError(f"the row has {len(out)} cells but the output header has "
                                     f"{len(self.output_header)} (declare it in output_header)")
            except Exception as e:
                errors.append((None, "plugin_error", self._plugin_failed(step, e)))
                out = row
            if rewritten and type(out) is not RewrittenRow:  # still counted once transformed
                out = RewrittenRow(out)
        return errors, out

    def _plugin_failed(self, step: HookCall | None, e: Exception) -> str:
        name = step.plugin if step is not None else "?"
        if name not in self._failed_plugins:
            self._failed_plugins.add(name)
            log.error("plugin %s raised %s in a row hook (logged once per file and process)",
                      name, e.__class__.__name__, exc_info=e)
        return f"plugin {name} failed on this row: {e.__class__.__name__}: {e}"


def build_checker(plugins_dir: str | None, schema_key: str, schema: dict, header: Sequence[str],
                  program_type: str, ingestion_name: str, program: str | None,
                  allow_unknown: bool = False,
                  processing: ProcessingChecks | None = None) -> PipelineChecker:
    """Top-level, picklable factory: what the CSV workers call once per spec version and header."""
    return PipelineChecker(plugins_dir=plugins_dir, schema_key=schema_key, schema=schema,
                           header=header, program_type=program_type,
                           ingestion_name=ingestion_name, program=program,
                           allow_unknown=allow_unknown, processing=processing)
