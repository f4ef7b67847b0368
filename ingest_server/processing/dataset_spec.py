"""cQube's ``spec."EventGrammar"`` and ``spec."DatasetGrammar"`` rows for the dataset tables
(CQUBE-PROCESSING.md §2.1, §2.3). query-builder answers ``[]`` for any ``datasets.X`` without its
DatasetGrammar row, so every table we create gets one. JSON-in-a-string values
(``dimensionMapping``, ``timeDimension``, ``dimensions``) are stored as cQube stores them: a JSONB
string holding JSON text.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any, Sequence

import asyncpg

from .datasets import DatasetTable, event_grammar_name

_TIME_KEY = {"Daily": "date", "Weekly": "week", "Monthly": "month", "Yearly": "year"}


def _json_text(value: Any) -> str:
    """JSON text as JSON.stringify writes it; stored with ``to_jsonb($n::text)`` (a JSONB
    string holding it, as cQube stores these values)."""
    return json.dumps(value, separators=(",", ":"))


def _cuid() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "c" + "".join(secrets.choice(alphabet) for _ in range(24))


async def counter_type(conn: asyncpg.Connection) -> str:
    """The ``COUNTER`` instrument type's id (created once, a cuid as cQube does)."""
    await conn.execute('INSERT INTO spec."InstrumentType" (type, name) VALUES ($1, \'COUNTER\') '
                       'ON CONFLICT DO NOTHING', _cuid())
    return await conn.fetchval('SELECT type FROM spec."InstrumentType" WHERE name = \'COUNTER\'')


def event_grammar_rows(grammar: Any, namespace: str, file: str,
                       dimension_ids: dict[str, int]) -> list[dict[str, Any]]:
    """One row per dimension column (event-grammar.service.ts:86-93; event.service.ts:63-93)."""
    rows = []
    metric = grammar.metric.name
    for col in grammar.dimension_columns:
        if not col.dimension:
            continue
        props: dict[str, Any] = {}
        if grammar.time_column is not None:
            props["date"] = {"type": "string", "format": "date"}
        props[metric] = {"type": "integer", "unique": True}
        props[col.name] = {"type": "string", "unique": True}
        mapping = [{"key": col.name, "dimension": {"name": dimension_ids.get(col.dimension),
                                                   "mapped_to": col.dimension_key}}]
        rows.append({"name": event_grammar_name(namespace, grammar.name, col),
                     "schema": {"properties": props}, "dimensionMapping": mapping,
                     "instrumentField": metric, "program": namespace, "file": file})
    return rows


def dataset_grammar_row(t: DatasetTable, file: str,
                        dimensions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``spec."DatasetGrammar"`` (dataset.service.ts:126-141): the schema as cQube stores it,
    before ``avg`` and the time columns are added."""
    props: dict[str, Any] = {k.column: {"type": "string"} for k in t.keys}
    if not t.compound:
        props.update(sum={"type": "number"}, count={"type": "number"})
    schema = {"title": t.name, "psql_schema": "datasets", "properties": props,
              "fk": [{"column": k.column, "reference": {"table": k.dimension,
                                                         "column": k.dimension_key}}
                     for k in t.keys]}
    dims = [{"key": k.column, "dimension": {"name": dimensions.get(k.dimension),
                                            "mapped_to": k.dimension_key}} for k in t.keys]
    time = {"key": _TIME_KEY[t.grain], "type": t.grain} if t.grain else None
    return {"name": t.name, "description": "", "dimensions": dims, "timeDimension": time,
            "schema": schema, "program": t.namespace, "isCompound": t.compound,
            "eventGrammarFile": file, "tableName": t.table, "tableNameExpanded": t.name,
            "eventGrammar": t.event_grammar}


SQL_EVENT_GRAMMAR = """
INSERT INTO spec."EventGrammar" (name, description, schema, "dimensionMapping", "instrumentField",
    "isActive", "instrumentType", program, file, "eventType", "updatedAt")
VALUES ($1, '', $2::text::jsonb, to_jsonb($3::text), $4, true, $5, $6, $7, 'INTERNAL',
        CURRENT_TIMESTAMP)
ON CONFLICT (name) DO UPDATE SET schema = EXCLUDED.schema,
    "dimensionMapping" = EXCLUDED."dimensionMapping",
    "instrumentField" = EXCLUDED."instrumentField",
    program = EXCLUDED.program, file = EXCLUDED.file, "updatedAt" = CURRENT_TIMESTAMP,
    "deletedAt" = NULL
"""

SQL_DATASET_GRAMMAR = """
INSERT INTO spec."DatasetGrammar" (name, description, dimensions, "timeDimension", schema, program,
    "isCompound", "eventGrammarFile", "eventGrammarId", "tableName", "tableNameExpanded",
    "updatedAt")
VALUES ($1, '', to_jsonb($2::text), to_jsonb($3::text), $4::text::jsonb, $5, $6, $7,
    (SELECT id FROM spec."EventGrammar" WHERE name = $8), $9, $10, CURRENT_TIMESTAMP)
ON CONFLICT (name) DO UPDATE SET dimensions = EXCLUDED.dimensions,
    "timeDimension" = EXCLUDED."timeDimension", schema = EXCLUDED.schema,
    program = EXCLUDED.program, "isCompound" = EXCLUDED."isCompound",
    "eventGrammarFile" = EXCLUDED."eventGrammarFile", "eventGrammarId" = EXCLUDED."eventGrammarId",
    "tableName" = EXCLUDED."tableName", "tableNameExpanded" = EXCLUDED."tableNameExpanded",
    "updatedAt" = CURRENT_TIMESTAMP, "deletedAt" = NULL
"""


def grammar_file(program: str, event: str) -> str:
    """cQube's ``file``: the grammar's path in its ``ingest/VSK`` folder."""
    return f"./ingest/VSK/programs/{program}/{event}-event.grammar.csv"


async def write_spec_rows(conn: asyncpg.Connection, grammars: Sequence[Any], namespace: str,
                          tables: Sequence[DatasetTable]) -> None:
    """EventGrammar rows of ``grammars`` and DatasetGrammar rows of ``tables`` (upserts)."""
    names = sorted({c.dimension for g in grammars for c in g.dimension_columns if c.dimension})
    found = await conn.fetch('SELECT id, name, to_jsonb(d)::text AS row '
                             'FROM spec."DimensionGrammar" d WHERE name = ANY($1::text[])', names)
    ids = {r["name"]: r["id"] for r in found}
    full = {r["name"]: json.loads(r["row"]) for r in found}
    counter = await counter_type(conn)
    for g in grammars:
        file = grammar_file(g.program, g.name)
        for row in event_grammar_rows(g, namespace, file, ids):
            await conn.execute(SQL_EVENT_GRAMMAR, row["name"], _json_text(row["schema"]),
                               _json_text(row["dimensionMapping"]), row["instrumentField"],
                               counter, row["program"], row["file"])
    for t in tables:
        row = dataset_grammar_row(t, grammar_file(t.program, t.event), full)
        await conn.execute(SQL_DATASET_GRAMMAR, row["name"], _json_text(row["dimensions"]),
                           None if row["timeDimension"] is None else
                           _json_text(row["timeDimension"]),
                           _json_text(row["schema"]), row["program"], row["isCompound"],
                           row["eventGrammarFile"], row["eventGrammar"], row["tableName"],
                           row["tableNameExpanded"])
