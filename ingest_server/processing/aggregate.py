"""Partial aggregates of an event file: per dataset table, (time…, keys…) → [count, sum].

Two levels, both bounded by the number of groups, never by the number of rows:

1. ``RowGroups`` (picklable; run in the validation workers on each chunk's valid rows, or here on
   rows read back): per *key set* (the key columns of some tables: ``district_id``;
   ``district_id, school_id`` for a compound table), the rows' (date text, keys) → [count, sum].
2. ``Aggregator`` merges those partials (``merge``) and rolls each key set up into its tables,
   one per grain (``groups``); a date's time values are computed once per distinct date text.

A table per grain thus costs one update per group of its key set, and a row one update per key
set, however many tables share the key set.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import gc
import io
import itertools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from .buckets import time_values
from .datasets import DatasetTable

if TYPE_CHECKING:
    from .grouping import Totals
    from .table_groups import TableGroups

# physical table → its groups (``TableGroups``; or group → [count, sum], as tests write them)
Groups = dict[str, "TableGroups | dict[tuple, list]"]
# per key set: its groups (date text?, keys…) in order of appearance, their counts and their sums
# (numpy arrays from the workers: no Python object a group but its key)
Partial = list[tuple[list[tuple], Any, Any]]


@dataclass(frozen=True)
class RowGroups:
    """How rows are grouped: the date cell (``date_i``, None without a time dimension), each key
    set's cells, the metric's cell and how it is read (``processing.metric``)."""

    date_i: int | None
    key_sets: tuple[tuple[int, ...], ...]
    metric_i: int | None
    metric: str = "number"

    def __call__(self, rows: Iterable[Sequence[str]]) -> Partial:
        """The rows' partial aggregates (ValueError for a metric that is not a number,
        IndexError for a row too short): each column coded once, each key set grouped with
        numpy (``grouping``)."""
        if self.metric_i is None:
            return [([], [], []) for _ in self.key_sets]
        from . import grouping
        rows = rows if isinstance(rows, list) else list(rows)
        coded, texts = grouping.read_columns(rows, self._columns, self.metric_i)
        return self._grouped(coded, grouping.parse_metrics(texts, self.metric), len(rows))

    def from_csv(self, data: bytes, ncols: int) -> Partial:
        """``self(rows)`` of the rows of ``data``, CSV bytes of ``ncols`` cells a line (a
        chunk's valid output): read from the bytes with numpy when they are plain
        (``csvbytes``), else with ``csv.reader``."""
        if self.metric_i is None:
            return self([])
        from . import csvbytes
        read = csvbytes.read_columns(data, ncols, self._columns, self.metric_i, self.metric)
        if read is None:
            return self(list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""))))
        return self._grouped(*read)

    @property
    def _columns(self) -> list[int]:
        """The cells read as keys: the date's and the key sets', each once."""
        date = (self.date_i,) if self.date_i is not None else ()
        return list(dict.fromkeys(date + tuple(itertools.chain(*self.key_sets))))

    def _grouped(self, coded: dict[int, tuple[Any, list]], values: Any, n: int) -> Partial:
        from . import grouping
        date = (self.date_i,) if self.date_i is not None else ()
        out: Partial = []
        for ks in self.key_sets:
            columns = [coded[i] for i in date + ks]
            ids, firsts = grouping.group_ids([(c, len(v)) for c, v in columns], n)
            counts, sums = grouping.totals(ids, len(firsts), None, values)
            out.append((grouping.group_keys(columns, firsts), counts, sums))
        return out


def row_groups(tables: Sequence[DatasetTable], header: Sequence[str],
               metric: str = "number") -> tuple[RowGroups, list[list[DatasetTable]]]:
    """How the rows of a file with ``header`` are grouped for ``tables``, and the tables of each
    key set (ValueError when the file lacks one of their columns)."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)
    missing = sorted({k.source for t in tables for k in t.keys} - index.keys()
                     | ({tables[0].metric} - index.keys() if tables else set()))
    dated = any(t.grain for t in tables)
    if dated and "date" not in index:
        missing.append("date")
    if missing:
        raise ValueError(f"the file has no column(s) {', '.join(missing)}")
    by_set: dict[tuple[int, ...], list[DatasetTable]] = {}
    for t in tables:
        by_set.setdefault(tuple(index[k.source] for k in t.keys), []).append(t)
    grouping = RowGroups(index["date"] if dated else None, tuple(by_set),
                         index[tables[0].metric] if tables else None, metric)
    return grouping, list(by_set.values())


class Aggregator:
    """Merges partial aggregates (from ``row_groups`` on rows, or from the workers) and gives
    each table's groups."""

    def __init__(self, tables: Sequence[DatasetTable], header: Sequence[str], *,
                 parse_date: Callable[[str], datetime.date], week: str = "cqube",
                 metric: str = "number") -> None:
        self.row_groups, self._tables = row_groups(tables, header, metric)
        self.tables = [t.physical for t in tables]
        self._parse_date = parse_date
        self._week = week
        self._times: dict[str, dict[str | None, tuple]] = {}
        from .grouping import Totals  # numpy: only where rows are aggregated
        # per key set: its groups (date text?, keys…) with their counts and sums
        self._sets = [Totals() for _ in self._tables]
        self.rows = 0

    def add_rows(self, rows: Iterable[Sequence[str]], batch: int = 10_000) -> None:
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, batch)):
            self.merge(self.row_groups(chunk))

    def merge(self, partial: Partial) -> None:
        """Add one partial (of some rows: a chunk's, from a worker)."""
        for totals, (keys, counts, sums) in zip(self._sets, partial, strict=True):
            totals.add(keys, counts, sums)
        if partial:
            self.rows += int(sum(partial[0][1]))

    def _time(self, text: str) -> dict[str | None, tuple]:
        times = self._times.get(text)
        if times is None:
            day = self._parse_date(text)
            times = {g: time_values(g, day, self._week)
                     for g in ("Daily", "Weekly", "Monthly", "Yearly")}
            times[None] = ()
            self._times[text] = times
        return times

    @property
    def groups(self) -> Groups:
        """Per table, group → [count, sum] of every row merged so far (``table_groups`` as
        dicts)."""
        parts = self.all_table_groups()
        with gc_paused():
            return {name: parts[name].as_dict() for name in self.tables}

    def all_table_groups(self) -> dict[str, TableGroups]:
        """``table_groups``' parts in one dict (physical table → its groups)."""
        return {name: g for part in self.table_groups() for name, g in part.items()}

    def table_groups(self) -> Iterator[dict[str, TableGroups]]:
        """Each key set's tables with their groups, column by column (``TableGroups``): each key
        set's groups rolled up into its tables (per grain, the groups of one time value and the
        same keys added in the order they were merged). The key sets with the most groups come
        first: their tables, the largest, can be applied while the others are rolled up."""
        order = sorted(range(len(self._sets)), key=lambda i: -len(self._sets[i].index))
        for i in order:
            yield self._roll_up(self._sets[i], self._tables[i])

    def _roll_up(self, totals: Totals, tables: list[DatasetTable]) -> dict[str, TableGroups]:
        from .grouping import factorize, group_ids, totals as add_up
        from .table_groups import TableGroups
        keys = list(totals.index)
        n = len(keys)
        if self.row_groups.date_i is None:
            columns = _columns(keys, n, len(tables[0].keys)) if tables else []
            return {t.physical: TableGroups(columns, group_types(t), totals.counts, totals.sums)
                    for t in tables}
        date_ids, texts = factorize(map(operator.itemgetter(0), keys), n)
        rest_ids, rests = factorize(map(operator.itemgetter(slice(1, None)), keys), n)
        rest_columns = _columns(rests, len(rests), len(tables[0].keys))
        out = {}
        for t in tables:
            time_ids, times = factorize([self._time(text)[t.grain] for text in texts],
                                        len(texts))
            at = time_ids[date_ids]
            ids, firsts = group_ids([(at, len(times)), (rest_ids, len(rests))], n)
            counts, sums = add_up(ids, len(firsts), totals.counts, totals.sums)
            columns = [(codes[at[firsts]], values)
                       for codes, values in _columns(times, len(times), len(t.time_columns))]
            columns += [(codes[rest_ids[firsts]], values) for codes, values in rest_columns]
            out[t.physical] = TableGroups(columns, group_types(t), counts, sums)
        return out

    @property
    def group_count(self) -> int:
        return sum(len(g) for part in self.table_groups() for g in part.values())


def _columns(rows: list[tuple], n: int, width: int) -> list:
    """The columns of ``n`` tuples of ``width`` values, each coded (``grouping.factorize``)."""
    from .grouping import factorize
    return [factorize(map(operator.itemgetter(j), rows), n) for j in range(width)]


def group_types(t: DatasetTable) -> list[str]:
    """The PostgreSQL types of ``t``'s group columns, as its temporary table has them."""
    return [typ.lower() for _, typ in t.time_columns] + ["text"] * len(t.keys)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No collection while many small containers are made that all live on (a group's key and
    [count, sum]): each collection would walk the process's objects, which took more than half
    of the roll-up's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def merge_groups(into: Groups, other: Groups) -> None:
    for physical, groups in other.items():
        target = into.setdefault(physical, {})
        for key, (count, total) in groups.items():
            acc = target.get(key)
            if acc is None:
                target[key] = [count, total]
            else:
                acc[0] += count
                acc[1] += total
