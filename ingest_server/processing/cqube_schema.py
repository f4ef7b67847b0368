"""cQube's table shapes in one place (CQUBE-PROCESSING.md §2.1, §2.2): the ``spec`` schema's
tables, ``dimensions.<dim>`` tables and the ``spec."DimensionGrammar"`` rows cQube's services read.

Everything is ``IF NOT EXISTS``: the processing database may be a real cQube database. cQube
writes identifiers unquoted, so PostgreSQL folds them to lower case; here they are quoted, in
lower case, which names the same tables and columns.
"""

from __future__ import annotations

import json
from typing import Any

from .grammars import DimensionGrammar

SCHEMAS = ("datasets", "dimensions", "spec", "transformers")
# The prisma schema plus the NOT NULL drops of cqube-devops (§2.1).
SPEC_DDL = """
CREATE SCHEMA IF NOT EXISTS datasets;
CREATE SCHEMA IF NOT EXISTS dimensions;
CREATE SCHEMA IF NOT EXISTS spec;
CREATE SCHEMA IF NOT EXISTS transformers;
DO $$ BEGIN
  IF to_regtype('spec."DimensionType"') IS NULL THEN
    CREATE TYPE spec."DimensionType" AS ENUM ('INTERNAL', 'EXTERNAL');
  END IF;
  IF to_regtype('spec."EventType"') IS NULL THEN
    CREATE TYPE spec."EventType" AS ENUM ('INTERNAL', 'EXTERNAL');
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS spec."InstrumentType" (
  type TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT);
CREATE TABLE IF NOT EXISTS spec."DimensionGrammar" (
  id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, type TEXT,
  schema JSONB NOT NULL, storage JSONB,
  "dimensionType" spec."DimensionType" NOT NULL DEFAULT 'INTERNAL',
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
  "deletedAt" TIMESTAMP(3));
CREATE TABLE IF NOT EXISTS spec."EventGrammar" (
  id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, schema JSONB NOT NULL,
  "dimensionMapping" JSONB, "instrumentField" TEXT, "isActive" BOOLEAN NOT NULL DEFAULT true,
  "instrumentType" TEXT REFERENCES spec."InstrumentType"(type), program TEXT, file TEXT,
  "eventType" spec."EventType" NOT NULL DEFAULT 'INTERNAL',
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
  "deletedAt" TIMESTAMP(3));
CREATE TABLE IF NOT EXISTS spec."DatasetGrammar" (
  id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, dimensions JSONB NOT NULL,
  "timeDimension" JSONB, schema JSONB NOT NULL, program TEXT,
  "isCompound" BOOLEAN NOT NULL DEFAULT false, "eventGrammarFile" TEXT,
  "eventGrammarId" INT REFERENCES spec."EventGrammar"(id) ON DELETE SET NULL ON UPDATE CASCADE,
  "tableName" TEXT, "tableNameExpanded" TEXT,
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
  "deletedAt" TIMESTAMP(3));
"""

# QBS:57-76 (cQube fails on date; a DATE column here).
SQL_TYPES = {"string": "VARCHAR", "number": "FLOAT8", "integer": "integer", "date": "DATE"}


def ident(name: str) -> str:
    """A name as cQube's unquoted SQL means it: folded to lower case, quoted."""
    return '"' + name.lower().replace('"', '""') + '"'


def dimension_table(name: str) -> str:
    return f"dimensions.{ident(name)}"


def index_name(grammar: DimensionGrammar) -> str:
    """``${dim}_${cols.join('_')}_idx`` (PostgreSQL cuts names to 63 bytes, as it does cQube's)."""
    return f"{grammar.name}_{'_'.join(grammar.indexes)}_idx".lower()[:63]


def column_ddl(grammar: DimensionGrammar, column: str) -> str:
    col = grammar.column(column)
    assert col is not None
    unique = " UNIQUE" if col.name in grammar.unique_columns else ""
    return f"{ident(col.name)} {SQL_TYPES[col.type]}{unique}"


def dimension_ddl(grammar: DimensionGrammar) -> list[str]:
    """``CREATE TABLE`` and the composite index over the Index columns, as cQube creates them."""
    cols = ", ".join(column_ddl(grammar, c.name) for c in grammar.columns)
    out = [f"CREATE TABLE IF NOT EXISTS {dimension_table(grammar.name)} "
           f"(id SERIAL PRIMARY KEY, {cols})"]
    if grammar.indexes:  # cQube emits an invalid "()" without any; nothing here
        out.append(f"CREATE INDEX IF NOT EXISTS {ident(index_name(grammar))} ON "
                   f"{dimension_table(grammar.name)} "
                   f"({', '.join(ident(c) for c in grammar.indexes)})")
    return out


def dimension_grammar_row(grammar: DimensionGrammar) -> dict[str, Any]:
    """``spec."DimensionGrammar"`` as cQube writes it (dimension.service.ts:29-45): ``storage``
    is a JSON *string* (JSON.stringify drops ``primaryId`` when there is no PK)."""
    unique = set(grammar.indexes) | ({grammar.pk} if grammar.pk else set())
    schema = {"title": grammar.name, "psql_schema": "dimensions",
              "properties": {c.name: {"type": c.type, "unique": c.name in unique}
                             for c in grammar.columns},
              "indexes": [{"columns": [list(grammar.indexes)]}]}
    storage: dict[str, Any] = {"indexes": ["name"]}
    if grammar.pk:
        storage["primaryId"] = grammar.pk
    storage.update(retention=None, bucket_size=None)
    return {"name": grammar.name, "description": "", "type": "dynamic", "schema": schema,
            "storage": json.dumps(storage, separators=(",", ":"))}


SQL_UPSERT_DIMENSION_GRAMMAR = """
INSERT INTO spec."DimensionGrammar" (name, description, type, schema, storage, "dimensionType",
                                     "updatedAt")
VALUES ($1, $2, $3, $4, $5, 'INTERNAL', CURRENT_TIMESTAMP)
ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, type = EXCLUDED.type,
  schema = EXCLUDED.schema, storage = EXCLUDED.storage, "dimensionType" = 'INTERNAL',
  "updatedAt" = CURRENT_TIMESTAMP, "deletedAt" = NULL
"""


def dimension_changes(old: DimensionGrammar, new: DimensionGrammar) -> list[dict[str, Any]]:
    """What a changed dimension grammar changes in its table (empty: the same table)."""
    changes: list[dict[str, Any]] = []
    old_cols = {c.name.lower(): c for c in old.columns}
    new_cols = {c.name.lower(): c for c in new.columns}
    for name, col in new_cols.items():
        before = old_cols.get(name)
        if before is None:
            changes.append({"change": "add_column", "column": col.name, "type": col.type})
        elif before.type != col.type:
            changes.append({"change": "change_type", "column": col.name, "from": before.type,
                            "to": col.type})
    for name, col in old_cols.items():
        if name not in new_cols:
            changes.append({"change": "drop_column", "column": col.name})
    old_unique = {c.lower() for c in old.unique_columns}
    for c in new.unique_columns:
        if c.lower() not in old_unique:
            changes.append({"change": "add_unique", "column": c})
    new_unique = {c.lower() for c in new.unique_columns}
    for c in old.unique_columns:
        if c.lower() not in new_unique and c.lower() in new_cols:
            changes.append({"change": "drop_unique", "column": c})
    if [c.lower() for c in old.indexes] != [c.lower() for c in new.indexes]:
        changes.append({"change": "index", "from": list(old.indexes), "to": list(new.indexes)})
    return changes


def migration_sql(old: DimensionGrammar, new: DimensionGrammar) -> list[str]:
    """ALTER statements taking ``old``'s table to ``new`` without losing rows."""
    table = dimension_table(new.name)
    out = []
    for ch in dimension_changes(old, new):
        kind, col = ch["change"], ch.get("column", "")
        if kind == "add_column":
            out.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column_ddl(new, col)}")
        elif kind == "change_type":
            sql_type = SQL_TYPES[ch["to"]]
            using = f"NULLIF({ident(col)}::text, '')::{sql_type}"
            out.append(f"ALTER TABLE {table} ALTER COLUMN {ident(col)} TYPE {sql_type} "
                       f"USING {using}")
        elif kind == "drop_column":
            out.append(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {ident(col)}")
        elif kind == "add_unique":
            out.append(f"ALTER TABLE {table} ADD UNIQUE ({ident(col)})")
        # drop_unique: the constraint is kept; it loses no row and the key stays unique.
        elif kind == "index":
            if old.indexes:
                out.append(f"DROP INDEX IF EXISTS dimensions.{ident(index_name(old))}")
            if new.indexes:
                out.append(f"CREATE INDEX IF NOT EXISTS {ident(index_name(new))} ON {table} "
                           f"({', '.join(ident(c) for c in new.indexes)})")
    return out
