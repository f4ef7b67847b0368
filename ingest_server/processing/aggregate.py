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

import datetime
import itertools
import operator
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .buckets import metric_parser, time_values
from .datasets import DatasetTable

Groups = dict[str, dict[tuple, list]]   # physical table → group → [count, sum]
# per key set: its groups (date text?, keys…) in order of appearance, their counts and their sums
# (one dict lookup a row and key set, the numbers in flat lists: about three times as fast as a
# dict of [count, sum] lists, and nothing the garbage collector has to walk)
Partial = list[tuple[list[tuple], list[int], list[float]]]


@dataclass(frozen=True)
class RowGroups:
    """How rows are grouped: the date cell (``date_i``, None without a time dimension), each key
    set's cells, the metric's cell and how it is read (``processing.metric``)."""

    date_i: int | None
    key_sets: tuple[tuple[int, ...], ...]
    metric_i: int | None
    metric: str = "number"

    def __call__(self, rows: Iterable[Sequence[str]]) -> Partial:
        """The rows' partial aggregates (ValueError for a metric that is not a number)."""
        if self.metric_i is None:
            return [([], [], []) for _ in self.key_sets]
        date = (self.date_i,) if self.date_i is not None else ()
        plan: list[tuple[Callable, dict[tuple, int], list[int], list[float]]] = [
            (_cells(date + ks), {}, [], []) for ks in self.key_sets]
        parse, metric_i = metric_parser(self.metric), self.metric_i
        for row in rows:
            value = parse(row[metric_i])
            for get, index, counts, sums in plan:
                key = get(row)
                i = index.get(key)
                if i is None:
                    index[key] = len(counts)
                    counts.append(1)
                    sums.append(value)
                else:
                    counts[i] += 1
                    sums[i] += value
        return [(list(index), counts, sums) for _, index, counts, sums in plan]


def _cells(positions: tuple[int, ...]) -> Callable[[Sequence[str]], tuple]:
    if len(positions) == 1:
        i = positions[0]
        return lambda row: (row[i],)
    return operator.itemgetter(*positions)


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
        # per key set: group → its place in the two lists of counts and sums
        self._sets: list[tuple[dict[tuple, int], list[int], list[float]]] = [
            ({}, [], []) for _ in self._tables]
        self.rows = 0

    def add_rows(self, rows: Iterable[Sequence[str]], batch: int = 10_000) -> None:
        rows = iter(rows)
        while chunk := list(itertools.islice(rows, batch)):
            self.merge(self.row_groups(chunk))

    def merge(self, partial: Partial) -> None:
        """Add one partial (of some rows: a chunk's, from a worker)."""
        for (index, counts, sums), (keys, more, totals) in zip(self._sets, partial, strict=True):
            get = index.get
            for key, n, total in zip(keys, more, totals):
                i = get(key)
                if i is None:
                    index[key] = len(counts)
                    counts.append(n)
                    sums.append(total)
                else:
                    counts[i] += n
                    sums[i] += total
        if partial:
            self.rows += sum(partial[0][1])

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
        """Per table, group → [count, sum] of every row merged so far."""
        out: Groups = {name: {} for name in self.tables}
        dated = self.row_groups.date_i is not None
        for (index, counts, sums), tables in zip(self._sets, self._tables):
            for t in tables:
                target = out[t.physical]
                get = target.get
                for k, i in index.items():
                    g = (self._time(k[0])[t.grain] + k[1:]) if dated else k
                    acc = get(g)
                    if acc is None:
                        target[g] = [counts[i], sums[i]]
                    else:
                        acc[0] += counts[i]
                        acc[1] += sums[i]
        return out

    @property
    def group_count(self) -> int:
        return sum(len(g) for g in self.groups.values())


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
