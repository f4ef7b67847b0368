"""The DDL of cQube's dataset tables (CQUBE-PROCESSING.md §2.3), plus our unique index.

cQube: ``id SERIAL PRIMARY KEY``, the key columns ``VARCHAR`` named by row 4 (row 2 for a
compound dataset) with ``FOREIGN KEY … REFERENCES dimensions.<dim>(<row2>)``, ``sum``, ``count``,
``avg`` ``FLOAT8``, then the time columns. Added here: a unique index on (time…, keys…), so a
table holds one row per group, as the dashboards assume.
"""

from __future__ import annotations

import hashlib

from .cqube_schema import ident
from .datasets import DatasetTable

SCHEMA = "datasets"


def qualified(table: DatasetTable) -> str:
    return f"{ident(SCHEMA)}.{ident(table.physical)}"


def unique_index_name(table: DatasetTable) -> str:
    digest = hashlib.sha1(table.physical.encode()).hexdigest()[:12]
    return f"{table.physical[:40]}_{digest}_uq"


def create_table_sql(table: DatasetTable) -> list[str]:
    """CREATE TABLE (cQube's shape) and the unique index, both IF NOT EXISTS."""
    cols = ["id SERIAL PRIMARY KEY"]
    cols += [f"{ident(k.column)} VARCHAR" for k in table.keys]
    cols += ["sum FLOAT8", "count FLOAT8", "avg FLOAT8"]
    cols += [f"{ident(c)} {t}" for c, t in table.time_columns]
    cols += [f"CONSTRAINT {ident('fk_' + k.column)} FOREIGN KEY ({ident(k.column)}) "
             f"REFERENCES {ident('dimensions')}.{ident(k.dimension)}({ident(k.dimension_key)})"
             for k in table.keys]
    group = ", ".join(ident(c) for c in table.group_columns)
    return [f"CREATE TABLE IF NOT EXISTS {qualified(table)} ({', '.join(cols)})",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {ident(unique_index_name(table))} "
            f"ON {qualified(table)} ({group})"]
