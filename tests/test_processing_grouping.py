"""The datasets' grouping with numpy (processing/grouping.py, aggregate.py) against plain Python
loops over the same rows: the same groups in the same order, the same counts and bit for bit the
same sums (float metrics, ``-0``, ``parseint``), the same errors for metrics that are not
numbers; then merged chunk by chunk and rolled up into the tables, as the plain loops would."""

from __future__ import annotations

import gc
import math
import pickle
import random

import numpy as np
import pytest

from ingest_server.processing import grouping
from ingest_server.processing.aggregate import Aggregator, RowGroups, row_groups
from ingest_server.processing.buckets import metric_parser, time_values
from ingest_server.processing.dates import parse_cqube_date
from ingest_server.processing.datasets import plan_tables
from ingest_server.processing.grammars import Program, parse_event_grammar

GRAMMAR = parse_event_grammar(
    "prog", "visits",
    ",district,school,grade,\n,district_id,school_id,grade,\ndate,string,string,string,number\n"
    "date,district_id,school_id,grade,visits\ntimeDimension,dimension,dimension,dimension,metric\n")
PROGRAM = Program("prog", "pg", (("district", "school"), ("grade", "district", "school")))
TABLES = plan_tables(GRAMMAR, PROGRAM)
HEADER = ["date", "district_id", "school_id", "grade", "visits", "comment"]
# one day written three ways (rolled up into one group), and days in three weeks and two years
DATES = ["01/05/23", "1/5/23", "2023-05-01", "02/05/23", "09/05/2023", "31/12/22", "01/01/23"]
METRIC_TEXTS = ["0", "-0", "+0", "00", " 7 ", "-3", "12", "1_000", "٣", "12.7", "-0.0", "1e-320",
                "2.5e3", "0x1A", "99999999999999999999", "9007199254740993", "1e400", "nan",
                "inf", "-Infinity", "abc", "", " ", "12abc", "- 5", "0.1", "-2.75"]


def _bits(x: float) -> str:
    return "nan" if math.isnan(x) else x.hex()


def _rows(rng: random.Random, n: int, values: list[str]) -> list[list[str]]:
    return [[rng.choice(DATES), f"d{rng.randrange(3)}", f"s{rng.randrange(12)}",
             f"g{rng.randrange(4)}", rng.choice(values), "x"] for _ in range(n)]


def _float_texts(rng: random.Random) -> list[str]:
    return [repr(rng.uniform(-100, 100)) for _ in range(30)] + ["0.1", "0.2", "-0.0", "7", "-0"]


def loop_partial(grouping_: RowGroups, rows: list[list[str]]) -> list:
    """The partial aggregates as a plain loop gives them (the code before numpy)."""
    parse = metric_parser(grouping_.metric)
    date = (grouping_.date_i,) if grouping_.date_i is not None else ()
    plan = [(date + ks, {}, [], []) for ks in grouping_.key_sets]
    for row in rows:
        value = parse(row[grouping_.metric_i])
        for cells, index, counts, sums in plan:
            key = tuple(row[i] for i in cells)
            if key not in index:
                index[key] = len(counts)
                counts.append(0)
                sums.append(None)
            i = index[key]
            counts[i] += 1
            sums[i] = value if sums[i] is None else sums[i] + value
    return [(list(index), counts, sums) for _, index, counts, sums in plan]


def loop_groups(partials: list, week: str = "cqube") -> dict:
    """Partials merged in order and rolled up per table, as plain loops do."""
    grouping_, tables_of_sets = row_groups(TABLES, HEADER)
    sets: list[dict] = [{} for _ in grouping_.key_sets]
    for partial in partials:
        for merged, (keys, counts, sums) in zip(sets, partial):
            for key, n, total in zip(keys, counts, sums):
                acc = merged.setdefault(key, [0, None])
                acc[0] += int(n)
                acc[1] = float(total) if acc[1] is None else acc[1] + float(total)
    out: dict = {t.physical: {} for t in TABLES}
    for merged, tables in zip(sets, tables_of_sets):
        for t in tables:
            target = out[t.physical]
            for key, (n, total) in merged.items():
                if t.grain is not None:
                    key = time_values(t.grain, parse_cqube_date(key[0]), week) + key[1:]
                acc = target.setdefault(key, [0, None])
                acc[0] += n
                acc[1] = total if acc[1] is None else acc[1] + total
    return out


def _same_partial(got: list, want: list) -> None:
    assert len(got) == len(want)
    for (keys, counts, sums), (wkeys, wcounts, wsums) in zip(got, want):
        assert keys == wkeys
        assert [int(c) for c in counts] == wcounts
        assert [_bits(float(s)) for s in sums] == [_bits(s) for s in wsums]


def _same_groups(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for table, groups in want.items():
        assert list(got[table]) == list(groups), table  # the same groups in the same order
        for key, (n, total) in groups.items():
            count, s = got[table][key]
            assert type(count) is int and type(s) is float
            assert (count, _bits(s)) == (n, _bits(total)), (table, key)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["number", "parseint"])
def test_grouping_equals_plain_loops(seed: int, mode: str):
    rng = random.Random(seed)
    values = _float_texts(rng) if seed % 2 else [str(rng.randrange(-50, 50)) for _ in range(20)]
    if mode == "parseint":
        values += ["1_000", "0x1A", "abc", " 12 ", "-0"]
    rows = _rows(rng, rng.randrange(1, 3000), values)
    agg = Aggregator(TABLES, HEADER, parse_date=parse_cqube_date, metric=mode)
    assert len(agg.row_groups.key_sets) == 5  # three single keys and two compound tables
    chunks, at = [], 0
    while at < len(rows):
        size = rng.choice([1, 7, 600, 2000])
        chunks.append(rows[at:at + size])
        at += size
    partials = [agg.row_groups(c) for c in chunks]
    loops = [loop_partial(agg.row_groups, c) for c in chunks]
    for got, want in zip(partials, loops):
        _same_partial(got, want)
    for p in partials:
        agg.merge(pickle.loads(pickle.dumps(p)))  # as a worker's partials arrive
    assert agg.rows == len(rows)
    _same_groups(agg.groups, loop_groups(loops))
    # the same rows at once (a file read back) give the same tables
    whole = Aggregator(TABLES, HEADER, parse_date=parse_cqube_date, metric=mode)
    whole.add_rows(rows, batch=len(rows))
    assert {t: {k: v[0] for k, v in g.items()} for t, g in whole.groups.items()} == \
        {t: {k: v[0] for k, v in g.items()} for t, g in agg.groups.items()}


def test_grouping_without_a_date_and_iso_weeks():
    rng = random.Random(7)
    rows = _rows(rng, 500, _float_texts(rng))
    plain = RowGroups(None, ((1,), (2, 1), (3, 2, 1), ()), 4)
    _same_partial(plain(rows), loop_partial(plain, rows))
    total = RowGroups(None, ((),), 4)  # no date, no key: one group
    _same_partial(total(rows), loop_partial(total, rows))
    agg = Aggregator(TABLES, HEADER, parse_date=parse_cqube_date, week="iso")
    partial = agg.row_groups(rows)
    agg.merge(partial)
    _same_groups(agg.groups, loop_groups([loop_partial(agg.row_groups, rows)], "iso"))
    assert gc.isenabled()  # paused during the roll-up only


def test_metric_texts_read_as_the_parser_reads_them():
    for mode in ("number", "parseint"):
        parse = metric_parser(mode)
        for text in METRIC_TEXTS:
            try:
                want = _bits(parse(text))
            except (ValueError, OverflowError) as exc:
                with pytest.raises(type(exc)):
                    grouping.parse_metrics([text], mode)
                with pytest.raises(type(exc)):  # among whole numbers too
                    grouping.parse_metrics(["1", text, "2"], mode)
                continue
            assert _bits(grouping.parse_metrics([text], mode)[0]) == want, (mode, text)
            got = grouping.parse_metrics(["5", text, "-0"], mode)
            assert [_bits(x) for x in got] == [_bits(parse(t)) for t in ("5", text, "-0")]


def test_a_row_that_cannot_be_grouped():
    agg = Aggregator(TABLES, HEADER, parse_date=parse_cqube_date)
    rows = [["01/05/23", "d1", "s1", "g1", "3", "x"], ["01/05/23", "d1"]]
    with pytest.raises(IndexError):
        agg.row_groups(rows)
    with pytest.raises(ValueError):
        agg.row_groups([["01/05/23", "d1", "s1", "g1", "three", "x"]])
    assert [len(keys) for keys, _, _ in agg.row_groups([])] == [0] * 5


@pytest.mark.parametrize("sizes", [(5, 7), (1 << 40, 1 << 40, 3), (200_000, 300_000)])
def test_group_ids_number_groups_by_first_appearance(sizes):
    """Small code spaces go through a lookup table, large ones through np.unique, and combined
    codes that would pass int64 are renumbered first: the same groups every way."""
    rng = np.random.default_rng(len(sizes))
    n = 5000
    columns = [(rng.integers(0, min(size, 50), n) * (size // min(size, 50)), size)
               for size in sizes]
    ids, firsts = grouping.group_ids(columns, n)
    seen: dict[tuple, int] = {}
    want = [seen.setdefault(tuple(int(c[i]) for c, _ in columns), len(seen)) for i in range(n)]
    assert ids.tolist() == want
    assert firsts.tolist() == [want.index(g) for g in range(len(seen))]
