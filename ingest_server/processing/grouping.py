"""Grouping many rows at once: C loops over each column, then numpy over integer codes.

Used by ``aggregate`` (imported there when rows are grouped or partials merged, so a process
that never aggregates never imports numpy). A column is coded once (``read_columns``: one dict
lookup a cell, in C), a key set's codes are combined into one integer a row, and the groups are
numbered in the order they first appear (``group_ids``), which is the order a loop over the rows
would meet them.

Sums are added in that loop's order too, starting from -0.0 (the identity of IEEE addition: the
first value is kept as it is, ``-0.0`` included), so a group's float sum is bit for bit the one a
plain ``for`` loop over its rows gives.
"""

from __future__ import annotations

import operator
from typing import Iterable, Sequence

import numpy as np

from .buckets import metric_parser

_BLOCK = 512  # rows coded at a time (read_columns)
# a key set's codes are combined in a lookup table while it is at most this many times the rows
_DIRECT = 4
_ROOM = 1 << 62  # a combined code must stay below this (int64)


class _Codes(dict):
    """value → code, the codes in order of first appearance (a new value takes the next)."""

    __slots__ = ()

    def __missing__(self, value):
        code = self[value] = len(self)
        return code


def factorize(values: Iterable, n: int) -> tuple[np.ndarray, list]:
    """The ``n`` values' codes (0, 1, … in order of first appearance) and the distinct values."""
    codes = _Codes()
    return np.fromiter(map(codes.__getitem__, values), np.intp, n), list(codes)


def read_columns(rows: Sequence[Sequence[str]], positions: Sequence[int],
                 text: int) -> tuple[dict[int, tuple[np.ndarray, int]], list[str]]:
    """The columns at ``positions`` coded (each: its codes as ``factorize`` gives them, and its
    number of distinct values), and the column ``text`` as it is (IndexError for a row too
    short). A block of rows is transposed at a time and its columns coded before the next: a
    chunk's rows are larger than the CPU's cache, a block's are not (about a third faster than
    column after column over the whole chunk)."""
    n = len(rows)
    coded = [(_Codes(), np.empty(n, np.intp)) for _ in positions]
    texts: list[str] = []
    cells = operator.itemgetter(*positions, text) if positions else lambda row: (row[text],)
    for start in range(0, n, _BLOCK):
        block = rows[start:start + _BLOCK]
        *columns, values = zip(*map(cells, block))
        for column, (codes, out) in zip(columns, coded):
            out[start:start + len(block)] = np.fromiter(map(codes.__getitem__, column), np.intp,
                                                        len(block))
        texts += values
    return {i: (out, len(codes)) for i, (codes, out) in zip(positions, coded)}, texts


def group_ids(columns: Sequence[tuple[np.ndarray, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The groups of ``n`` rows by several coded columns ((codes, number of codes) each): each
    row's group, the groups numbered in order of first appearance, and each group's first row."""
    if not columns:  # no key at all: one group
        return np.zeros(n, np.intp), np.zeros(min(n, 1), np.intp)
    combined, space = columns[0]
    for codes, size in columns[1:]:
        if space * size >= _ROOM:
            combined, firsts = _first_ids(combined, space, n)
            space = len(firsts)
        combined, space = combined * size + codes, space * size
    return _first_ids(combined, space, n)


def _first_ids(combined: np.ndarray, space: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    if space <= max(_DIRECT * n, 1 << 16):  # a lookup table over the codes
        first = np.full(space, n, np.intp)
        np.minimum.at(first, combined, np.arange(n))
        present = np.flatnonzero(first < n)
        order = present[np.argsort(first[present])]
        rank = np.empty(space, np.intp)
        rank[order] = np.arange(len(order))
        return rank[combined], first[order]
    distinct, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(distinct), np.intp)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def totals(ids: np.ndarray, size: int, counts: np.ndarray | None,
           values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group (``ids`` in ``range(size)``): the count (of rows, or the sum of ``counts``) and
    the sum of ``values``, added in the order of ``ids``."""
    if counts is None:
        count = np.bincount(ids, minlength=size)
    else:
        count = np.zeros(size, np.int64)
        np.add.at(count, ids, counts)
    total = np.full(size, -0.0)
    np.add.at(total, ids, values)
    return count, total


def parse_metrics(texts: Sequence[str], mode: str) -> np.ndarray:
    """``buckets.metric_parser(mode)`` of the texts, as an array (ValueError where it raises
    one: a text that is not a number, or not a finite one).

    Whole numbers, the usual metric, are read with ``int`` (in C, about twice as fast as
    ``float``), which gives the same double: both round the same number correctly. The
    exceptions are kept: ``-0`` (``float`` gives -0.0) and, for ``parseint``, ``_`` (``int``
    reads ``1_000`` as 1000, JavaScript's ``parseInt`` as 1)."""
    parse, n = metric_parser(mode), len(texts)
    if mode == "number" or "_" not in "".join(texts):
        try:
            values = np.fromiter(map(int, texts), np.float64, n)
        except (ValueError, OverflowError):  # not all whole numbers, or beyond a double
            pass
        else:
            if mode == "number":
                for i in np.flatnonzero(values == 0).tolist():
                    if "-" in texts[i]:
                        values[i] = -0.0
            return values
    if mode == "number":  # float() in C, then the finite check of buckets._number at once
        values = np.fromiter(map(float, texts), np.float64, n)
        finite = np.isfinite(values)
        if not finite.all():
            raise ValueError(f"not a finite number: {texts[int(np.argmin(finite))]!r}")
        return values
    return np.fromiter(map(parse, texts), np.float64, n)


class Totals:
    """Counts and sums of groups named by hashable keys, numbered in order of first appearance;
    ``add`` adds another set of them (a chunk's partial aggregates)."""

    def __init__(self) -> None:
        self.index: dict = _Codes()  # a new key takes the next number
        self._counts = np.zeros(0, np.int64)
        self._sums = np.zeros(0)

    def add(self, keys: Sequence, counts: np.ndarray, sums: np.ndarray) -> None:
        index = self.index
        ids = np.fromiter(map(index.__getitem__, keys), np.intp, len(keys))
        if len(index) > len(self._counts):
            room = max(len(index), 2 * len(self._counts)) - len(self._counts)
            self._counts = np.concatenate([self._counts, np.zeros(room, np.int64)])
            self._sums = np.concatenate([self._sums, np.full(room, -0.0)])
        np.add.at(self._counts, ids, counts)
        np.add.at(self._sums, ids, sums)

    @property
    def counts(self) -> np.ndarray:
        return self._counts[:len(self.index)]

    @property
    def sums(self) -> np.ndarray:
        return self._sums[:len(self.index)]
