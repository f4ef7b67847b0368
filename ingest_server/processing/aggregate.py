"""Partial aggregates of an event file: per dataset table, (time…, keys…) → [count, sum].

Pure and streaming: rows are added one at a time (or a chunk at a time in a worker) and partials
merged, so memory is bounded by the number of groups, never by the number of rows. A date's time
values are computed once per distinct date text.
"""

from __future__ import annotations

import datetime
from typing import Callable, Iterable, Sequence

from .buckets import metric_parser, time_values
from .datasets import DatasetTable

Groups = dict[str, dict[tuple, list]]   # physical table → group → [count, sum]


class Aggregator:
    """Rows are first counted per distinct (date text, key cells) — one dict update per row —
    and rolled up into every table's groups when read (``groups``) or when that first level holds
    ``flush_at`` entries, so memory stays bounded by the tables' groups plus ``flush_at``."""

    def __init__(self, tables: Sequence[DatasetTable], header: Sequence[str], *,
                 parse_date: Callable[[str], datetime.date], week: str = "cqube",
                 metric: str = "number", flush_at: int = 500_000) -> None:
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(name, i)
        missing = sorted({k.source for t in tables for k in t.keys} - index.keys()
                         | ({tables[0].metric} - index.keys() if tables else set()))
        grains = sorted({t.grain for t in tables if t.grain})
        if grains and "date" not in index:
            missing.append("date")
        if missing:
            raise ValueError(f"the file has no column(s) {', '.join(missing)}")
        # the cells a row is grouped by: the date (if any), then each key column once
        sources = sorted({index[k.source] for t in tables for k in t.keys})
        cells = ([index["date"]] if grains else []) + sources
        position = {c: i for i, c in enumerate(cells)}
        self._dated = bool(grains)
        self._cells = cells
        self._metric_i = index[tables[0].metric] if tables else None
        self._grains = grains
        self._plans = [(t.physical, t.grain, tuple(position[index[k.source]] for k in t.keys))
                       for t in tables]
        self._parse_date = parse_date
        self._week = week
        self._metric = metric_parser(metric)
        self._times: dict[str, dict[str | None, tuple]] = {}
        self._fine: dict[tuple, list] = {}
        self._flush_at = flush_at
        self._groups: Groups = {t.physical: {} for t in tables}
        self.rows = 0

    def add_rows(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self.add(row)

    def add(self, row: Sequence[str]) -> None:
        if self._metric_i is None:
            return
        value = self._metric(row[self._metric_i])
        key = tuple([row[i] for i in self._cells])
        acc = self._fine.get(key)
        if acc is None:
            self._fine[key] = [1, value]
            if len(self._fine) >= self._flush_at:
                self._flush()
        else:
            acc[0] += 1
            acc[1] += value
        self.rows += 1

    def _time(self, text: str) -> dict[str | None, tuple]:
        times = self._times.get(text)
        if times is None:
            day = self._parse_date(text)
            times = {g: time_values(g, day, self._week) for g in self._grains}
            times[None] = ()
            self._times[text] = times
        return times

    def _flush(self) -> None:
        fine, self._fine = self._fine, {}
        groups = self._groups
        none: dict[str | None, tuple] = {None: ()}
        for key, (count, total) in fine.items():
            times = self._time(key[0]) if self._dated else none
            for physical, grain, key_i in self._plans:
                k = times[grain] + tuple([key[i] for i in key_i])
                acc = groups[physical].get(k)
                if acc is None:
                    groups[physical][k] = [count, total]
                else:
                    acc[0] += count
                    acc[1] += total

    @property
    def groups(self) -> Groups:
        """Per table, group → [count, sum] of every row added so far."""
        if self._fine:
            self._flush()
        return self._groups

    def merge(self, other: Groups) -> None:
        """Add the partial aggregates ``other`` (e.g. of one chunk, from a worker)."""
        merge_groups(self.groups, other)

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
