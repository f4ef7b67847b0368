"""The columns of plain CSV bytes coded with numpy, without a Python object a cell.

A validation worker writes a plain chunk's valid rows as the bytes that arrived
(``csvstream.worker``: no quote, one record a line); the datasets' partial aggregates of the
chunk are read from those bytes here instead of from its rows as lists of strings
(``aggregate.RowGroups.from_csv``), the same columns as ``grouping.read_columns`` gives.

Bytes that are not plain as this module reads them (a quote, a NUL, a CR but at a line's end, a
line of another number of fields) give None: the caller reads them with ``csv.reader``. A field
ends at a ``,`` or a line break, which never occur inside a UTF-8 character, so a field's bytes
decode to exactly the cell ``csv.reader`` reads from the decoded text.

A key column's fields are read as 8-byte little-endian words, each the word that ends where
the field ends, shifted down to the field's bytes (zero bytes above them: without a NUL in the
bytes that is exact), and coded by sorting (``_factorized``); a field of more than 8 bytes is
several words, each combined with the codes of the bytes after it and coded again (an 11-digit
school code: two sorts); past 64 bytes the column is
decoded and coded as strings. Each distinct value is decoded once, from its first field. A
metric column of whole numbers (a sign and 1 to 18 digits) is read as integers, as
``parse_metrics`` reads them (``-0`` is -0.0, but 0 with ``parseint``); any other metric column
is decoded and read by ``grouping.parse_metrics``.

Measured (``bench/bench_datasets.py --grouping``, 1M rows in chunks of 16 000, this thread's CPU,
best of three, the partials pickled; load 4): school-days 0.39 µs a row against 1.24 µs from the
rows (``read_columns``), worst 1.80 against 4.53 µs (there the groups' keys, one tuple a group,
are most of what is left).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import grouping

_COMMA, _CR, _LF = 44, 13, 10
_PAD = 32  # zero bytes after the data: a word (8) or a number's digits (18) read past a field
_MAX_WORDS = 8  # a key field of more than 64 bytes: its column is coded from strings
_MAX_DIGITS = 18  # below 2**63: the integer is exact in int64
Coded = tuple[np.ndarray, list]  # a column's codes and its distinct values (read_columns)


class PlainFields:
    """Where the fields of plain CSV bytes end (``seps``, by column: the separator after each
    field, one row of ``ncols`` fields a line; ``last_end``: a last field's end, before a CR);
    ``of`` gives None for bytes that are not plain (see the module). Positions are in ``buf``:
    8 zero bytes (a word that ends at a field's end never starts before the buffer), the bytes,
    a last line break if they lack one, and ``_PAD`` zero bytes."""

    def __init__(self, buf: np.ndarray, seps: np.ndarray, last_end: np.ndarray) -> None:
        self.buf, self.last_end = buf, last_end
        self.ncols, self.rows = seps.shape
        self.seps = seps  # by column: each column's separators in a row (numpy's fast loops)
        # every offset's 8 bytes as a little-endian word (an unaligned view: no copy)
        self.words = np.ndarray((len(buf) - 7,), "<u8", buf, 0, (1,))

    @classmethod
    def of(cls, data: bytes, ncols: int) -> PlainFields | None:
        if not data or ncols < 2 or b'"' in data or b"\x00" in data:
            return None
        buf = np.frombuffer(bytes(8) + data + (b"" if data.endswith(b"\n") else b"\n")
                            + bytes(_PAD), np.uint8)
        lf = buf == _LF
        seps = np.flatnonzero(lf | (buf == _COMMA))
        rows, rest = divmod(len(seps), ncols)
        if rest or np.count_nonzero(lf) != rows:
            return None
        seps = seps.reshape(rows, ncols)
        # Every line break ends a row of ncols separators: the other separators are commas.
        if not lf[seps[:, -1]].all():
            return None
        seps = seps.T.copy()
        last_end = seps[-1]
        cr = (buf[last_end - 1] == _CR) & (last_end - 1 > seps[-2])
        if np.count_nonzero(buf == _CR) != np.count_nonzero(cr):
            return None  # a CR but at a line's end: csv.reader's to judge
        return cls(buf, seps, last_end - cr)

    def _bounds(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Where column ``i``'s fields start and end."""
        ends = self.last_end if i == self.ncols - 1 else self.seps[i]
        if i:
            return self.seps[i - 1] + 1, ends
        starts = np.empty(self.rows, np.intp)
        starts[0] = 8
        starts[1:] = self.seps[-1, :-1] + 1
        return starts, ends

    def texts(self, i: int, at: np.ndarray | None = None) -> list[str]:
        """Column ``i``'s fields (at the rows ``at``, or all) as strings: gathered into one
        ``\\n``-separated buffer, decoded and split at once."""
        s, e = self._bounds(i)
        if at is not None:
            s, e = s[at], e[at]
        if not len(s):
            return []
        size = e - s + 1  # each field and a separator
        stop = np.cumsum(size)
        out = self.buf[np.arange(int(stop[-1])) + np.repeat(s - (stop - size), size)]
        out[stop - 1] = _LF
        return out.tobytes().decode("utf-8").split("\n")[:-1]

    def column(self, i: int) -> Coded:
        """Column ``i`` coded as ``grouping.read_columns`` codes it (the codes may number the
        values in another order: only which rows share a value counts)."""
        s, e = self._bounds(i)
        length = e - s
        words = max(1, (int(length.max()) + 7) // 8)
        if words > _MAX_WORDS:
            return grouping.factorize(self.texts(i), self.rows)
        codes = firsts = None
        for k in range(words):  # the field's last 8 bytes, the 8 before them, …
            # the word that ends where the field's k-th 8 bytes from its end end; its top
            # ``kept`` bytes are the field's, shifted down (twice: a shift by 64 is undefined)
            kept = np.clip(length - 8 * k, 0, 8) if words > 1 else length
            shift = (32 - 4 * kept).astype(np.uint64)
            part = self.words[e - 8 * (k + 1)] >> shift >> shift
            if codes is None:
                codes, firsts = _factorized(part)
                continue
            # this word and the codes of the bytes after it, as one number (its own codes
            # first when it is too wide for that), coded again
            size = len(firsts)
            part -= part.min()
            if int(part.max()) >= ((1 << 64) - size) // size:
                part = _factorized(part)[0].astype(np.uint64)
            part *= np.uint64(size)
            part += codes.astype(np.uint64)
            codes, firsts = _factorized(part)
        return codes, self.texts(i, firsts)

    def whole_numbers(self, i: int, mode: str) -> np.ndarray | None:
        """Column ``i`` as ``grouping.parse_metrics(texts, mode)`` reads it when every field is
        a whole number written plainly (an optional sign, 1 to 18 digits); else None."""
        s, e = self._bounds(i)
        first = self.buf[s]
        negative = first == ord("-")
        signed = negative | (first == ord("+"))
        s = s + signed
        digits = e - s
        if not len(s) or digits.min() < 1 or digits.max() > _MAX_DIGITS:
            return None
        value = np.zeros(len(s), np.int64)
        for k in range(int(digits.max())):
            digit = self.buf[s + k] - np.uint8(ord("0"))  # wraps above 9 for a non-digit
            here = k < digits
            if (digit[here] > 9).any():
                return None
            value = np.where(here, value * 10 + digit, value)
        if mode == "number":  # float("-0") is -0.0 ...
            values = value.astype(np.float64)
            np.negative(values, out=values, where=negative)
            return values
        return np.where(negative, -value, value).astype(np.float64)  # ... parseInt's is 0


def _factorized(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes numbering the distinct ``values`` (in increasing order) and each one's first
    position. Values that fit beside their position in a word (minus the smallest) are sorted
    with it (``np.sort``, about 4x faster than ``np.unique``'s stable argsort here, and equal
    values stay in row order); others go through ``np.unique``."""
    n = len(values)
    bits = max(1, (n - 1).bit_length())
    low = values.min()
    values = values - low
    if int(values.max()) >> (64 - bits):
        distinct, codes = np.unique(values, return_inverse=True)
        codes = codes.reshape(-1)
        firsts = np.full(len(distinct), n)
        np.minimum.at(firsts, codes, np.arange(n))
        return codes, firsts
    packed = values << np.uint64(bits)
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    at = (packed & np.uint64((1 << bits) - 1)).astype(np.intp)
    packed >>= np.uint64(bits)
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(packed[1:], packed[:-1], out=new[1:])
    codes = np.empty(n, np.intp)
    codes[at] = np.cumsum(new) - 1
    return codes, at[new]


def read_columns(data: bytes, ncols: int, positions: Sequence[int], metric: int,
                 mode: str) -> tuple[dict[int, Coded], np.ndarray, int] | None:
    """``grouping.read_columns`` of the rows of ``data`` (``ncols`` fields a line) with the
    metric column read (``grouping.parse_metrics``), and the number of rows; None when the
    bytes are not plain (module docstring)."""
    fields = PlainFields.of(data, ncols)
    if fields is None:
        return None
    values = fields.whole_numbers(metric, mode)
    if values is None:
        values = grouping.parse_metrics(fields.texts(metric), mode)
    return {i: fields.column(i) for i in positions}, values, fields.rows
