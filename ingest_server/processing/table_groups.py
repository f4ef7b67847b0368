"""One dataset table's groups, column by column, and their binary COPY.

A group is (time…, keys…) → (count, sum). Each column is kept coded (an integer a group, and the
column's distinct values), as the roll-up computes it (``aggregate.Aggregator``), so the COPY
that sends the groups to PostgreSQL is built with numpy for all groups at once: no Python object
a group. On the 1M-row school-days upload (166,267 groups in 32 tables) that replaced about
0.3 CPU-s of the server's Python (a key tuple and a [count, sum] list a group in the roll-up,
then asyncpg encoding each record) with a few hundredths.

``from_dict``/``as_dict`` convert from and to the plain form, group key tuple → [count, sum],
that tests, the recovery path and the rebuild use.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .grouping import factorize

Column = tuple[np.ndarray, list]   # each group's code, and the distinct values the codes name
_EPOCH = datetime.date(2000, 1, 1).toordinal()   # PostgreSQL's binary dates count from it
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)       # signature, flags, no header extension
_TRAILER = b"\xff\xff"


@dataclass
class TableGroups:
    """``columns`` in the table's group order (time columns, then keys) with their PostgreSQL
    types (``date``, ``integer`` or ``text``), each group's count and sum."""

    columns: list[Column]
    types: Sequence[str]
    counts: np.ndarray
    sums: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    @classmethod
    def from_dict(cls, groups: dict[tuple, Sequence], types: Sequence[str]) -> TableGroups:
        keys = list(groups)
        n = len(keys)
        columns = [factorize(c, n) for c in zip(*keys)] if keys else \
            [(np.zeros(0, np.intp), []) for _ in types]
        values = list(groups.values())
        return cls(columns, types, np.fromiter((v[0] for v in values), np.int64, n),
                   np.fromiter((v[1] for v in values), np.float64, n))

    def as_dict(self) -> dict[tuple, list]:
        keys = zip(*(map(values.__getitem__, codes.tolist()) for codes, values in self.columns)) \
            if self.columns else [()] * len(self)
        return dict(zip(keys, map(list, zip(self.counts.tolist(), self.sums.tolist()))))

    def binary_copy(self, first_id: int | None = None) -> bytes:
        """The groups in PostgreSQL's binary COPY format, fields in the order of ``columns``,
        then count and sum (float8), as the temporary tables of ``contributions`` take them.
        With ``first_id``: as rows of the dataset table itself, an id first (``first_id``,
        ``first_id + 1``, … in the groups' order) and ``avg = sum / count`` last."""
        columns = []   # per column: its distinct values as big-endian int4s, or as UTF-8 texts
        for (codes, values), typ in zip(self.columns, self.types):
            if typ == "text":
                lengths, blob = _utf8(values)
                columns.append((codes, (lengths, np.cumsum(lengths) - lengths,
                                        np.frombuffer(blob, np.uint8))))
            elif typ == "date":
                columns.append((codes, np.fromiter((v.toordinal() - _EPOCH for v in values),
                                                   np.int64, len(values))))
            elif typ == "integer":
                columns.append((codes, np.fromiter(values, np.int64, len(values))))
            else:
                raise ValueError(f"no binary COPY for type {typ!r}")
        counts = self.counts.astype(np.float64)
        out = [_HEADER]
        for lo in range(0, len(self), _BLOCK):  # a block's index arrays: a few MB at most
            at = slice(lo, lo + _BLOCK)
            ids = None if first_id is None else np.arange(first_id + lo, first_id + lo +
                                                          len(counts[at]))
            out.append(_rows([(codes[at], v) for codes, v in columns], ids, counts[at],
                             self.sums[at]))
        out.append(_TRAILER)
        return b"".join(out)


_BLOCK = 1 << 15


def _rows(columns: list[tuple[np.ndarray, Any]], ids: np.ndarray | None, counts: np.ndarray,
          sums: np.ndarray) -> bytes:
    """Binary COPY rows: per row its field count, then per field its length and bytes. The
    fixed-size pieces (field count, lengths, numbers) and the texts alternate; each piece is
    written for all rows at once at the rows' offsets."""
    n = len(counts)
    fixed: list[list[tuple[str, np.ndarray]]] = [
        [("nf", np.full(n, len(columns) + (2 if ids is None else 4)))]]
    if ids is not None:
        fixed[0] += [("len", np.full(n, 4)), ("i4", ids)]
    texts = []   # per text column: each row's text's length and start in the blob, the blob
    for codes, values in columns:
        if isinstance(values, tuple):
            lengths, starts, blob = values
            texts.append((lengths[codes], starts[codes], blob))
            fixed[-1].append(("len", texts[-1][0]))
            fixed.append([])
        else:
            fixed[-1] += [("len", np.full(n, 4)), ("i4", values[codes])]
    fixed[-1] += [("len", np.full(n, 8)), ("f8", counts), ("len", np.full(n, 8)), ("f8", sums)]
    if ids is not None:
        fixed[-1] += [("len", np.full(n, 8)), ("f8", sums / counts)]
    pieces = [_piece(p, n) for p in fixed]   # (n, size) bytes each
    sizes = sum(p.shape[1] for p in pieces) + sum(t[0] for t in texts)
    ends = np.cumsum(sizes)
    out = np.empty(int(ends[-1]), np.uint8)
    at = ends - sizes   # each row's next byte
    for i, piece in enumerate(pieces):
        size = piece.shape[1]
        out[(at[:, None] + np.arange(size)).ravel()] = piece.ravel()
        at = at + size
        if i < len(texts):
            lengths, starts, blob = texts[i]
            within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths,
                                                               lengths)
            out[np.repeat(at, lengths) + within] = blob[np.repeat(starts, lengths) + within]
            at = at + lengths
    return out.tobytes()


def _utf8(values: list[str]) -> tuple[np.ndarray, bytes]:
    """Each text's length in UTF-8 and all of them encoded, one after the other (encoded at once
    when all are ASCII, each its own length)."""
    blob = "".join(values).encode()
    lengths = np.fromiter(map(len, values), np.int64, len(values))
    if len(blob) != int(lengths.sum()):   # not all ASCII
        encoded = [v.encode() for v in values]
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    return lengths, blob


_TYPES = {"nf": ">i2", "len": ">i4", "i4": ">i4", "f8": ">f8"}


def _piece(fields: list[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    """Fixed-size fields of every row, big-endian, as an (n, bytes a row) array."""
    dtype = np.dtype([(f"f{i}", _TYPES[kind]) for i, (kind, _) in enumerate(fields)])
    rows = np.empty(n, dtype)
    for i, (_, values) in enumerate(fields):
        rows[f"f{i}"] = values
    return rows.view(np.uint8).reshape(n, dtype.itemsize)
