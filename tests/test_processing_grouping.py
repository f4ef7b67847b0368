"""The datasets' grouping with numpy (processing/grouping.py, aggregate.py) against plain Python
loops over the same rows: the same groups in the same order, the same counts and bit for bit the
same sums (float metrics, ``-0``, ``parseint``), the same errors for metrics that are not
numbers; then merged chunk by chunk and rolled up into the tables, as the plain loops would."""

from __future__ import annotations

import csv
import gc
import io
import math
import pickle
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_server.processing import csvbytes, grouping
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


# --- from the valid output's bytes (csvbytes) ------------------------------------------------

# Key cells: short and long (one to nine 8-byte words, and past the 64 bytes coded from
# strings), empty, blank, multi-byte UTF-8 (lengths in bytes), 8-byte cells that differ in
# their last byte only; a NUL, a quote or a lone CR sends the chunk to csv.reader.
_KEY_PARTS = ["a", "B", "7", " ", "é", "中", "😀", "-", "/", "x" * 7, "y" * 8, "z" * 9,
              "w" * 30, "01/05/23", "01/05/2023"]
_KEYS = st.one_of(st.lists(st.sampled_from(_KEY_PARTS), max_size=4).map("".join),
                  st.sampled_from(["p" + "q" * 8, "r" + "q" * 8, "s" * 16, "t" + "s" * 15]),
                  st.integers(0, 99).map(lambda i: f"0123456{i:02d}"[-8:]),
                  st.text(st.sampled_from("ab\x00\"\r é"), max_size=3),
                  st.just("k" * 70))
_WHOLE = st.one_of(st.integers(-10 ** 19, 10 ** 19).map(str),
                   st.sampled_from(["0", "-0", "+0", "00", "-00", "007", "+12", "-5", "9" * 18,
                                    "-" + "9" * 18, "9" * 19, "9007199254740993"]))
_METRICS = {
    "number": st.one_of(_WHOLE, st.floats(-1e300, 1e300).map(repr),
                        st.sampled_from(["-0.0", " 7", "1_000", "٣", "12.7", "1e400", "abc", "",
                                         "-", "+-1", "0x1A"])),
    "parseint": st.one_of(_WHOLE, st.sampled_from(["1_000", "0x1A", "12.7", "abc", "", " 12 ",
                                                   "-0x0", "-"]))}


@st.composite
def _chunks(draw, mode: str) -> tuple[RowGroups, bytes, int]:
    """A RowGroups over random columns (a date or not; single, compound and empty key sets)
    and CSV bytes of its rows: LF or CRLF line ends, with or without the last one."""
    ncols = draw(st.integers(2, 6))
    metric_i = draw(st.integers(0, ncols - 1))
    others = [i for i in range(ncols) if i != metric_i]
    date_i = draw(st.sampled_from([None, *others]))
    key_sets = tuple(draw(st.lists(st.lists(st.sampled_from(others), max_size=3, unique=True)
                                   .map(tuple), min_size=1, max_size=4)))
    pool = draw(st.lists(_KEYS, min_size=1, max_size=6))  # few values: groups recur
    metrics = draw(st.lists(_METRICS[mode], min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(st.sampled_from(pool), min_size=ncols, max_size=ncols),
                         min_size=1, max_size=40))
    lines = []
    for row in rows:
        row[metric_i] = draw(st.sampled_from(metrics))
        lines.append(",".join(row) + draw(st.sampled_from(["\n", "\r\n"])))
    data = "".join(lines)
    if draw(st.booleans()):
        data = data.rstrip("\r\n")
    return RowGroups(date_i, key_sets, metric_i, mode), data.encode(), ncols


def _outcome(call) -> object:
    """What ``call`` returns, or the kind of error it raises: the rows cannot be grouped (a
    metric that is not a number, a row too short: which comes first is the path's choice;
    ``DatasetSummary`` answers None for both) or csv.reader refuses them (a lone CR)."""
    try:
        return call()
    except (ValueError, IndexError):
        return ValueError
    except csv.Error:
        return csv.Error


@pytest.mark.parametrize("mode", ["number", "parseint"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_partials_from_the_bytes_equal_plain_loops(mode: str, data: st.DataObject):
    """``RowGroups.from_csv`` (numpy over the bytes, or csv.reader when they are not plain)
    gives what the plain loop and the rows' own grouping give on the rows csv.reader reads:
    the same groups in the same order, counts and bit for bit the same sums (``-0``, floats,
    ``parseint``), the same error for a metric that is not a number."""
    groups, raw, ncols = data.draw(_chunks(mode))
    text = raw.decode()
    plain = not any(c in text for c in '"\x00') and "\r" not in text.replace("\r\n", "")
    assert (csvbytes.PlainFields.of(raw, ncols) is not None) == plain
    rows = _outcome(lambda: list(csv.reader(io.StringIO(text, newline=""))))
    if isinstance(rows, type):
        assert _outcome(lambda: groups.from_csv(raw, ncols)) is rows
        return
    want = _outcome(lambda: loop_partial(groups, rows))
    for got in (_outcome(lambda: groups.from_csv(raw, ncols)),
                _outcome(lambda: groups(rows))):
        if isinstance(want, type):
            assert got is want
        else:
            assert not isinstance(got, type), got
            _same_partial(got, want)


def test_partials_from_the_bytes_of_a_worker_chunk():
    """The bench's file as a worker writes it (CRLF): the bytes' partials equal the rows'."""
    rng = random.Random(3)
    rows = _rows(rng, 3000, [str(rng.randrange(-50, 50)) for _ in range(20)] + ["-0"])
    raw = "".join(",".join(r) + "\r\n" for r in rows).encode()
    agg = Aggregator(TABLES, HEADER, parse_date=parse_cqube_date)
    assert csvbytes.PlainFields.of(raw, len(HEADER)) is not None
    _same_partial(agg.row_groups.from_csv(raw, len(HEADER)), loop_partial(agg.row_groups, rows))


@pytest.mark.parametrize("rows", [40, 3000])
def test_cells_that_differ_in_one_byte_have_their_own_codes(rows: int):
    """Cells alike but for one byte, first, middle or last, in one 8-byte word or several:
    each distinct cell its own code and its own text. 8-byte cells whose words differ by
    2**58 and more, or less (``rows`` 40: beyond and within what the sort packs beside a row
    number), 16-byte cells whose first word is too wide to combine with the second's codes,
    and cells past 64 bytes (coded from strings)."""
    wide = []
    for width in (1, 2, 7, 8, 9, 16, 17, 64, 65):
        for at in sorted({0, width // 2, width - 1}):
            wide += ["k" * at + c + "k" * (width - at - 1) for c in "klz\x7f"]
    # words 2**58 - 1 apart at most (beside a row number < 64: packed) and 2**58 (not)
    near, far = ["aaaaaaaa", "aaaaaaad", "aaaaaaab", "baaaaaaa"], ["aaaaaaaa", "aaaaaaae"]
    # 16 bytes, first words 2**62 apart and 4 last ones: times 4, they would be the same
    # number (too wide to combine with the last word's codes as they are)
    front = [a + b * 8 for a in ("aaaaaaa!", "aaaaaaaa") for b in "0123"]
    rng = random.Random(rows)
    columns = [[cells[i % len(cells)] for i in range(rows)]
               for cells in (wide, near, far, front)]
    for column in columns:
        rng.shuffle(column)
    raw = "".join(",".join(r) + ",1\r\n" for r in zip(*columns)).encode()
    fields = csvbytes.PlainFields.of(raw, 5)
    for i, column in enumerate(columns):
        codes, values = fields.column(i)
        assert [values[c] for c in codes.tolist()] == column
        assert sorted(values) == sorted(set(column))
