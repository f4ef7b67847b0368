"""Registering cQube grammars: the grammar versions (service database), the tables and
``spec."DimensionGrammar"`` rows (processing database), and the ingestion spec each grammar is.

A dimension grammar creates ``dimensions.<dim>`` as cQube does; a changed one that changes the
table is a 409 ``grammar_conflict`` listing the changes, unless ``migrate`` (then ALTERed, rows
kept). An event grammar is also the event's ingestion spec (types from row 3, every column
required and not blank); an existing spec that disagrees is a 409 naming the columns.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ..stores.db import db_errors
from ..errors import Conflict, GrammarInvalid, IngestError, NotFound
from ..stores.specs import SpecStore
from . import cqube_schema
from .grammars import (DimensionGrammar, EventGrammar, Program, check_event_links,
                       parse_dimension_grammar, parse_event_grammar, parse_program)
from .store import GrammarStore, StoredGrammar

SETUP_LOCK = 7_246_113_100  # serialises the DDL of processes starting at once
CERBERUS_TYPES = {"string": "string", "date": "string", "integer": "integer", "number": "number"}


class GrammarNotFound(NotFound):
    code = "grammar_not_found"


def _spec_field(type_: str, *, required: bool, blank: bool) -> dict[str, Any]:
    t = CERBERUS_TYPES[type_]
    rules: dict[str, Any] = {"type": t, "required": required}
    if t == "string":
        if not blank:
            rules["empty"] = False
    else:
        rules["coerce"] = t
        if blank:
            rules["nullable"] = True
    return rules


def event_spec(grammar: EventGrammar) -> dict[str, Any]:
    """The Cerberus schema an event grammar stands for: every column required, not blank."""
    return {c.name: _spec_field(c.type, required=True, blank=False) for c in grammar.columns}


def dimension_spec(grammar: DimensionGrammar) -> dict[str, Any]:
    """A dimension file: every column present; only the key column must not be blank."""
    return {c.name: _spec_field(c.type, required=True, blank=c.name != grammar.key_column)
            for c in grammar.columns}


def _spec_type(rules: Any) -> str | None:
    t = rules.get("type") if isinstance(rules, dict) else None
    return {"float": "number"}.get(t, t) if isinstance(t, str) else None


def spec_disagreement(existing: dict[str, Any], wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns on which a registered spec and a grammar disagree (missing, extra, type)."""
    out = []
    for col, rules in wanted.items():
        if col not in existing:
            out.append({"column": col, "problem": "not in the spec"})
        elif _spec_type(existing[col]) != rules["type"]:
            out.append({"column": col, "problem": f"spec type {_spec_type(existing[col])!r}, "
                                                  f"grammar type {rules['type']!r}"})
    out += [{"column": col, "problem": "not in the grammar"} for col in existing
            if col not in wanted]
    return out


class GrammarRegistry:
    def __init__(self, *, store: GrammarStore, specs: SpecStore,
                 processing_pool: asyncpg.Pool) -> None:
        self.store = store
        self.specs = specs
        self.pool = processing_pool

    async def setup(self) -> None:
        """cQube's schemas and spec tables in the processing database (IF NOT EXISTS)."""
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SETUP_LOCK)
                await conn.execute(cqube_schema.SPEC_DDL)

    # -- reading -------------------------------------------------------------------------------

    async def dimension(self, name: str) -> DimensionGrammar | None:
        stored = await self.store.latest("dimension", "", name)
        return None if stored is None else parse_dimension_grammar(name, stored.body)

    async def dimensions(self) -> dict[str, DimensionGrammar]:
        return {g.name: parse_dimension_grammar(g.name, g.body)
                for g in await self.store.list_latest("dimension")}

    async def event(self, program: str | None, name: str) -> EventGrammar | None:
        """The event grammar of ``name`` in ``program``; without a programme, the one grammar
        of that name if only one programme has it."""
        if program:
            stored = await self.store.latest("event", program, name)
        else:
            found = [g for g in await self.store.list_latest("event") if g.name == name]
            stored = found[0] if len(found) == 1 else None
        return None if stored is None else parse_event_grammar(stored.program, name, stored.body)

    async def get(self, kind: str, program: str, name: str) -> list[StoredGrammar]:
        versions = await self.store.versions(kind, program, name)
        if not versions:
            what = f"{kind} grammar '{name}'" if kind != "program" else f"programme '{name}'"
            if kind == "event":
                what += f" of programme '{program}'"
            raise GrammarNotFound(f"no {what} is registered", kind=kind, name=name)
        return versions

    # -- registering ---------------------------------------------------------------------------

    async def register_dimension(self, name: str, text: str, *, migrate: bool = False,
                                 created_by: str | None = None) -> dict[str, Any]:
        grammar = parse_dimension_grammar(name, text)
        before = await self.dimension(name)
        changes = cqube_schema.dimension_changes(before, grammar) if before else []
        if changes and not migrate:
            raise Conflict(f"the changed grammar of dimension '{name}' changes its table; send it "
                           "again with ?migrate=true to alter the table (rows are kept)",
                           code="grammar_conflict", changes=changes)
        spec_created = await self._ensure_spec("dimension", name, dimension_spec(grammar),
                                               replace=bool(changes))
        row = cqube_schema.dimension_grammar_row(grammar)
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                   f"dimension:{name}")
                for sql in cqube_schema.dimension_ddl(grammar):
                    await conn.execute(sql)
                if before is not None:
                    for sql in cqube_schema.migration_sql(before, grammar):
                        await conn.execute(sql)
                await conn.execute(cqube_schema.SQL_UPSERT_DIMENSION_GRAMMAR, row["name"],
                                   row["description"], row["type"], row["schema"], row["storage"])
        stored, created = await self.store.register(kind="dimension", program="", name=name,
                                                    body=text, created_by=created_by)
        return {"grammar": stored.to_json(), "created": created, "migrated": changes,
                "spec_created": spec_created, "table": cqube_schema.dimension_table(name)}

    async def register_event(self, program: str, name: str, text: str, *,
                             created_by: str | None = None) -> dict[str, Any]:
        grammar = parse_event_grammar(program, name, text)
        check_event_links(grammar, await self.dimensions())
        spec_created = await self._ensure_spec("event", name, event_spec(grammar))
        stored, created = await self.store.register(kind="event", program=program, name=name,
                                                    body=text, created_by=created_by)
        return {"grammar": stored.to_json(), "created": created, "spec_created": spec_created}

    async def register_program(self, name: str, body: Any, *,
                               created_by: str | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise GrammarInvalid(None, None, 'the body must be {"namespace": ..., '
                                             '"whitelisted": [...]}')
        program = parse_program(name, body)
        text = json.dumps(program_json(program), sort_keys=True)
        stored, created = await self.store.register(kind="program", program="", name=name,
                                                    body=text, created_by=created_by)
        return {"program": stored.to_json(), "created": created}

    async def _ensure_spec(self, kind: str, name: str, wanted: dict[str, Any], *,
                           replace: bool = False) -> bool:
        """Create the ingestion spec, or check the registered one agrees (409 naming columns);
        ``replace`` (a migrated dimension) registers the grammar's spec as a new version."""
        try:
            existing = await self.specs.latest(kind, name)
        except IngestError as e:
            if e.code != "spec_not_found":
                raise
            await self.specs.register(kind=kind, name=name, cerberus=wanted, source=None,
                                      source_format="cerberus", created_by="processing",
                                      columns=list(wanted))
            return True
        problems = spec_disagreement(existing.cerberus, wanted)
        if problems and replace:
            await self.specs.register(kind=kind, name=name, cerberus=wanted, source=None,
                                      source_format="cerberus", created_by="processing",
                                      columns=list(wanted))
            return True
        if problems:
            raise Conflict(f"the registered {kind} spec '{name}' (version {existing.version}) "
                           f"disagrees with the grammar on column(s) "
                           f"{', '.join(p['column'] for p in problems)}",
                           code="grammar_conflict", columns=problems)
        return False


def program_json(program: Program) -> dict[str, Any]:
    return {"namespace": program.namespace,
            "whitelisted": [",".join(w) for w in program.whitelisted]}
