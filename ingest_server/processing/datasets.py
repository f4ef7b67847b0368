"""Which dataset tables an event grammar of a programme yields (CQUBE-PROCESSING.md §3), with the
names, columns and keys cQube gives them (§2.3).

For an event grammar with k dimension columns: one single-dimension table per dimension column
and grain (4k with a time dimension, else k), plus, for each whitelisted combination whose
dimensions all appear in the grammar, one compound table per grain. Names are de-duplicated,
first one wins (cQube's ``uniqBy``), so two event grammars of a programme with the same metric
share their single-dimension tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .buckets import TIME_COLUMNS
from .naming import GRAINS, compound_expanded, compound_table, physical, single_name


@dataclass(frozen=True)
class DatasetKey:
    column: str          # the dataset table's column
    source: str          # the data file's column the value is read from (row 4)
    dimension: str       # dimensions.<dimension>
    dimension_key: str   # its column the key references (row 2)


@dataclass(frozen=True)
class DatasetTable:
    name: str            # cQube's name = tableNameExpanded (mixed case)
    table: str           # cQube's tableName (the hashed name for a compound dataset)
    namespace: str
    program: str
    event: str
    grain: str | None    # Daily|Weekly|Monthly|Yearly, None without a time dimension
    keys: tuple[DatasetKey, ...]
    metric: str          # the data file's metric column
    compound: bool
    event_grammar: str | None   # spec."EventGrammar".name of a single-dimension dataset

    @property
    def physical(self) -> str:
        """The table's name in PostgreSQL (cQube's identifiers are unquoted: lower case)."""
        return physical(self.table)

    @property
    def time_columns(self) -> tuple[tuple[str, str], ...]:
        return TIME_COLUMNS[self.grain]

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The columns of one group, in the order partial aggregates key them: time, then keys."""
        return tuple(c for c, _ in self.time_columns) + tuple(k.column for k in self.keys)


def event_grammar_name(namespace: str, event: str, column: Any) -> str:
    """``${ns}_${evt}_${dim}_${row2}`` (event-grammar.service.ts:86-93)."""
    return f"{namespace}_{event}_{column.dimension}_{column.dimension_key}"


def plan_tables(grammar: Any, program: Any) -> list[DatasetTable]:
    """The dataset tables of event grammar ``grammar`` in ``program`` (a ``grammars.Program``)."""
    ns, evt = program.namespace, grammar.name
    metric = grammar.metric.name
    grains: tuple[str | None, ...] = GRAINS if grammar.time_column is not None else (None,)
    dims = [c for c in grammar.dimension_columns if c.dimension]
    out: list[DatasetTable] = []
    for col in dims:
        key = DatasetKey(col.name, col.name, col.dimension, col.dimension_key or col.name)
        for grain in grains:
            name = single_name(ns, metric, col.dimension, grain)
            out.append(DatasetTable(name, name, ns, program.name, evt, grain, (key,), metric,
                                    False, event_grammar_name(ns, evt, col)))
    by_dimension: dict[str, Any] = {}
    for col in dims:
        by_dimension.setdefault(col.dimension, col)
    for entry in program.whitelisted:
        wanted = tuple(d.strip() for d in entry)
        if not wanted or any(d not in by_dimension for d in wanted):
            continue
        keys = tuple(DatasetKey(by_dimension[d].dimension_key or by_dimension[d].name,
                                by_dimension[d].name, d,
                                by_dimension[d].dimension_key or by_dimension[d].name)
                     for d in wanted)
        if len({k.column for k in keys}) != len(keys):
            continue  # the same dimension twice: no table can hold it
        for grain in grains:
            expanded = compound_expanded(ns, evt, wanted, grain)
            out.append(DatasetTable(expanded, compound_table(ns, evt, expanded), ns,
                                    program.name, evt, grain, keys, metric, True, None))
    return unique_tables(out)


def unique_tables(tables: Iterable[DatasetTable]) -> list[DatasetTable]:
    """De-duplicated by physical name, first one wins (cQube's ``uniqBy(name)``)."""
    seen: set[str] = set()
    out = []
    for t in tables:
        if t.physical not in seen:
            seen.add(t.physical)
            out.append(t)
    return out
