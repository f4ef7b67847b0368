"""Processing as the upload path sees it (DESIGN.md §12), with ``processing.enabled``:

* ``checks_for(kind, program, name)`` before an event file streams: its grammar's key, date
  checks (``rowcheck.ProcessingChecks``), or a 400 ``dimension_not_loaded`` for a dimension
  with no rows yet (``processing.unknown_keys = "keep"``: unchecked, with a warning);
* ``after_upload(...)`` once a dimension file's objects are published: load it into
  ``dimensions.<dim>``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import asyncpg

from ..config import ProcessingConfig
from ..stores.db import db_errors, transaction
from ..errors import FileRejected, IngestError
from .cqube_schema import dimension_table
from .keycache import key_files, key_state
from .loader import load_dimension
from .references import unknown_references
from .registry import GrammarRegistry
from .rowcheck import KeyCheck, ProcessingChecks

log = logging.getLogger("ingest_server.processing")


class ProcessingService:
    def __init__(self, *, config: ProcessingConfig, registry: GrammarRegistry,
                 pool: asyncpg.Pool, keys_dir: Path, quote: str = '"') -> None:
        self.config = config
        self.registry = registry
        self.pool = pool  # the processing database
        self.keys_dir = keys_dir
        self.quote = quote  # the valid files' quote character (``'`` in the cqube layout)

    async def checks_for(self, kind: str, program: str | None,
                         name: str) -> tuple[ProcessingChecks | None, list[dict[str, Any]]]:
        """The checks an event file gets from its grammar, and warnings for the upload."""
        if kind != "event":
            return None, []
        grammar = await self.registry.event(program, name)
        if grammar is None:
            if program:
                return None, []
            # No programme named (a national ZIP's member): the one grammar of that name, or,
            # when several programmes have one, no check, said in a warning.
            programs = sorted(g.program for g in await self.registry.store.list_latest("event")
                              if g.name == name)
            return None, ([{"code": "grammar_ambiguous",
                            "message": f"event grammar '{name}' is registered in several "
                                       f"programmes ({', '.join(programs)}): its keys were not "
                                       "checked; upload it with program_name",
                            "details": {"programs": programs}}] if len(programs) > 1 else [])
        dims = await self.registry.dimensions()
        loads = await self.registry.store.last_loads()
        checks, unloaded = [], []
        with db_errors():
            async with self.pool.acquire() as conn:
                for col in grammar.dimension_columns:
                    dim = dims.get(col.dimension or "")
                    if dim is None or col.dimension_key is None:
                        continue  # registered links are checked; a dimension dropped since: skip
                    files = await self._key_files(conn, dim.name, col.dimension_key, loads)
                    if files is None:
                        unloaded.append(dim.name)
                        continue
                    checks.append(KeyCheck(column=col.name, files=files))
        warnings = []
        if unloaded:
            message = (f"dimension(s) with no rows loaded: {', '.join(unloaded)}; load their "
                       "files (ingestion_type=dimension) first")
            if self.config.unknown_keys != "keep":
                raise FileRejected(message, code="dimension_not_loaded", dimensions=unloaded)
            warnings.append({"code": "dimension_not_loaded",
                             "message": message + " (processing.unknown_keys = keep: their keys "
                                                  "were not checked)",
                             "details": {"dimensions": unloaded}})
        time_column = grammar.time_column
        return ProcessingChecks(keys=tuple(checks), key_match=self.config.key_match,
                                date_column=time_column.name if time_column else None,
                                datasets=await self._dataset_tables(program, name),
                                metric=self.config.metric, week=self.config.week), warnings

    async def _dataset_tables(self, program: str | None, event: str) -> tuple[Any, ...]:
        """The dataset tables an event fills (their partial aggregates are computed while the
        file streams)."""
        datasets = getattr(self, "datasets", None)  # processing.pipeline.attach_datasets
        if datasets is None or program is None:
            return ()
        _, _, tables = await datasets.program_tables(program)
        return tuple(t for t in tables if t.event == event)

    async def _key_files(self, conn: asyncpg.Connection, dimension: str, column: str,
                         loads: dict[str, Any]) -> Any:
        """The key files of a dimension column as loaded now; None when it has no rows."""
        state = await key_state(conn, dimension, column)
        if state is None:
            return None
        load = (loads.get(dimension) or {}).get("loaded_at", "none")
        return await key_files(conn, self.keys_dir, dimension, column,
                               f"{_stamp(load)}-{state}")

    async def _prebuild(self, dimension: str) -> None:
        """After a load: the key files of every column events look up in this dimension, so
        the next event upload does not wait for them (a million keys take seconds)."""
        columns = set()
        for stored in await self.registry.store.list_latest("event"):
            g = await self.registry.event(stored.program, stored.name)
            columns |= {c.dimension_key for c in (g.dimension_columns if g else ())
                        if c.dimension == dimension and c.dimension_key}
        if not columns:
            return
        loads = await self.registry.store.last_loads()
        with db_errors():
            async with self.pool.acquire() as conn:
                for column in sorted(columns):
                    await self._key_files(conn, dimension, column, loads)

    async def after_upload(self, kind: str, name: str, body: dict[str, Any],
                           read: Callable[[str], AsyncIterator[bytes]]) -> dict[str, Any] | None:
        """Load a landed dimension file into its table; what happened (None: nothing to do)."""
        objects = body.get("objects") or {}
        key = objects.get("valid")
        if kind != "dimension" or body.get("status") != "uploaded" or body.get("dry_run") \
                or not isinstance(key, str):
            return None
        grammar = await self.registry.dimension(name)
        if grammar is None:
            return None
        upload_id = body.get("upload_id")
        try:
            async with transaction(self.pool) as conn:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                   f"dimension:{name}")
                with db_errors():
                    rows = await load_dimension(conn, grammar, read(key), quote=self.quote)
        except IngestError as e:
            log.error("dimension %s: loading upload %s failed: %s", name, upload_id, e)
            error = e.to_json()["error"]
            await self.registry.store.record_load(name, upload_id, 0, error)
            return {"status": "failed", "table": dimension_table(name), "error": error}
        await self.registry.store.record_load(name, upload_id, rows)
        try:
            await self._prebuild(name)
        except (IngestError, OSError) as e:  # the next event upload builds them instead
            log.warning("dimension %s: key files not built after the load: %s", name, e)
        return {"status": "loaded", "table": dimension_table(name), "rows": rows}

    async def upload_references(self, record: dict[str, Any],
                                read: Callable[[str], AsyncIterator[bytes]]) -> dict[str, Any]:
        """An event upload's unknown keys grouped by dimension (empty without an error file)."""
        key = (record.get("objects") or {}).get("errors")
        grammar = None
        if record.get("kind") == "event" and record.get("ingestion_name"):
            grammar = await self.registry.event(record.get("program"), record["ingestion_name"])
        groups = []
        if grammar is not None and isinstance(key, str):
            quote = '"'  # error files are RFC 4180 in both layouts
            groups = await unknown_references(grammar, read(key), quote)
        return {"upload_id": record.get("id"), "unknown_references": groups}

    async def status(self) -> dict[str, Any]:
        """Every grammar: dimensions with their row count and last load, events with links."""
        dims = await self.registry.dimensions()
        loads = await self.registry.store.last_loads()
        out_dims = []
        with db_errors():
            async with self.pool.acquire() as conn:
                for name, g in sorted(dims.items()):
                    rows = await conn.fetchval(f"SELECT count(*) FROM {dimension_table(name)}")
                    out_dims.append({"name": name, "key_column": g.key_column, "rows": rows,
                                     "columns": [c.name for c in g.columns],
                                     "last_load": loads.get(name)})
        events = []
        for stored in await self.registry.store.list_latest("event"):
            g = await self.registry.event(stored.program, stored.name)
            if g is None:
                continue
            events.append({"program": g.program, "name": g.name, "version": stored.version,
                           "metric": g.metric.name,
                           "time_column": g.time_column.name if g.time_column else None,
                           "dimensions": [{"column": c.name, "dimension": c.dimension,
                                           "key": c.dimension_key}
                                          for c in g.dimension_columns]})
        programs = [dict(name=p.name, version=p.version, body=p.body)
                    for p in await self.registry.store.list_latest("program")]
        return {"dimensions": out_dims, "events": events, "programs": programs}


def _stamp(loaded_at: str) -> str:
    return "".join(ch for ch in loaded_at if ch.isalnum())
