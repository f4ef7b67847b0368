"""The keys of a dimension table in a compact form every validation worker shares.

A dimension of 2 million keys must not cost each worker 2 million Python strings. So its keys are
kept as 64-bit hashes in open-addressing tables in files that every process maps read-only: the
pages live once in the OS page cache, whatever the number of workers. A lookup hashes the cell
(xxHash3, one C call) and probes the table (linear probing; the tables are 25-50 % full: a
known key takes one or two reads).

Three tables, one per way of matching (``processing.key_match``): ``.exact``, ``.trim`` (spaces
and tabs around the key ignored) and ``.fold`` (ASCII case ignored too). Next to each table, a
reference array (``.ref``, int32 per slot) names the stored key a slot stands for, when the cell
that matches it must be written as another text (see ``KeyIndex.match``); the stored keys
themselves are in ``.blob`` with their offsets in ``.off``, read only for such a cell.

cQube's producers write text values wrapped in single quotes (``'S001'``) and cQube reads both
event and dimension files with ``'`` as the quote character (CQUBE-PROCESSING.md §1.5): so a
cell wholly wrapped in ``'`` is matched by the text inside (``''`` inside read as ``'``), on
both sides, and a matching cell is written in the valid file as the stored key.

A slot holds the key's hash (always odd) when the matched text is the stored key itself, and the
hash with bit 0 cleared when the reference says which stored key it is: a lookup of a known key
as it is written reads one table only.

Two keys sharing a hash (about n²/2⁶⁵: 10⁻⁷ for 2 million keys) would let an unknown key pass;
never the other way round.
"""

from __future__ import annotations

import array
import csv
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import xxhash

ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(ASCII_UPPER, ASCII_UPPER.lower())
BLANKS = " \t"
MODES = ("exact", "trim", "fold")
SELF = -1  # a reference: the stored key is the matched text itself (nothing to rewrite)
xxh3_64 = xxhash.xxh3_64_intdigest


def key_hash(text: str) -> int:
    """Odd: a slot holds the hash as it is when the stored key is the matched text itself
    (``SELF``, the usual case: the reference need not be read), the hash with bit 0 cleared when
    its reference must be read; 0 is an empty slot."""
    return xxh3_64(text.encode("utf-8", "surrogatepass")) | 1


def unquoted(text: str) -> str:
    """A cell as cQube reads it: ``'S001'`` is ``S001``, ``'It''s'`` is ``It's``."""
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


def trimmed(text: str) -> str:
    return text.strip(BLANKS)


def folded(text: str) -> str:
    return text.strip(BLANKS).translate(_FOLD)


def table_size(n: int) -> int:
    """A power of two above 2 n (load factor 0.25-0.5: nearly every key in its home slot or
    the next one, which the generated checks probe inline; ``rowcheck.py``)."""
    return 1 << max(4, (2 * n).bit_length())


# -- building (main process, in a thread) ------------------------------------------------------

class _Table:
    """One writable table and its references while the files are built."""

    def __init__(self, base: str, mode: str, size: int) -> None:
        self.mask = size - 1
        self.files = []
        self.hashes = self._create(f"{base}.{mode}", size * 8, "Q")
        self.refs = self._create(f"{base}.{mode}.ref", size * 4, "i")

    def _create(self, path: str, nbytes: int, typecode: str):
        f = open(path, "w+b")
        f.truncate(nbytes)
        mm = mmap.mmap(f.fileno(), nbytes)
        self.files.append((f, mm))
        return memoryview(mm).cast(typecode)

    def add(self, h: int, ref: int) -> bool:
        """Place ``h`` (odd) with ``ref`` (``SELF`` or the stored key's number); whether it is
        new. A second key of the same hash makes the slot ambiguous (``-(first + 2)``), unless
        one of them is the matched text itself, which wins (``'S1'`` and ``S1`` stored: ``S1``
        is meant)."""
        hashes, refs, mask = self.hashes, self.refs, self.mask
        i = h & mask
        while True:
            found = hashes[i]
            if found == 0:
                if ref == SELF:
                    hashes[i] = h
                else:
                    hashes[i], refs[i] = h ^ 1, ref
                return True
            if found == h:  # already SELF
                return False
            if found == h ^ 1:
                old = refs[i]
                if ref == SELF:
                    hashes[i] = h
                elif old >= 0:
                    refs[i] = -(old + 2)
                return False
            i = (i + 1) & mask

    def point(self, h: int, ref: int) -> None:
        """The slot of ``h`` (placed with a reference) names ``ref`` now, unless ambiguous."""
        hashes, refs, mask = self.hashes, self.refs, self.mask
        i = h & mask
        while hashes[i] != h ^ 1:
            i = (i + 1) & mask
        if refs[i] >= 0:
            refs[i] = ref

    def close(self) -> None:
        self.hashes.release()
        self.refs.release()
        for f, mm in self.files:
            mm.flush()
            mm.close()
            f.close()


def write_key_files(csv_path: Path, base: Path, n: int) -> int:
    """PostgreSQL's COPY CSV output of the key column (one key a line, any order) → the tables,
    ``.off`` (n+1 offsets) and ``.blob`` (the keys' UTF-8 bytes). The number of keys."""
    size = table_size(n)
    tables = {mode: _Table(str(base), mode, size) for mode in MODES}
    exact, trim, fold = tables["exact"], tables["trim"], tables["fold"]
    count = 0
    offset = 0
    try:
        with open(csv_path, newline="", encoding="utf-8") as src, \
                open(str(base) + ".off", "wb") as off, open(str(base) + ".blob", "wb") as blob:
            offsets = array.array("Q", [0])
            for record in csv.reader(src):
                if count >= n:  # more keys than COPY counted: the table could fill up
                    raise ValueError(f"more than the {n} keys expected in {csv_path}")
                key = record[0]
                text = unquoted(key)
                new = exact.add(key_hash(text), SELF if text == key else count)
                # Two keys equal but for blanks or case are ambiguous to a cell that matches
                # neither exactly: these tables always name the stored key. Two keys that are
                # the same text ('S1' and S1) are one key to them: the unquoted one.
                t = trimmed(text)
                ht, hf = key_hash(t), key_hash(t.translate(_FOLD))
                if new:
                    trim.add(ht, count)
                    fold.add(hf, count)
                elif text == key:
                    trim.point(ht, count)
                    fold.point(hf, count)
                data = key.encode("utf-8")
                blob.write(data)
                offset += len(data)
                offsets.append(offset)
                count += 1
                if len(offsets) >= 65536:
                    offsets.tofile(off)
                    offsets = array.array("Q")
            offsets.tofile(off)
    finally:
        for table in tables.values():
            table.close()
    return count


# -- looking up (every worker) -----------------------------------------------------------------

def _mapped(path: str, typecode: str) -> Sequence[int]:
    size = os.path.getsize(path)
    if size == 0:
        return ()
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return memoryview(mm).cast(typecode)


class _Lookup:
    """One mapped table and its references."""

    __slots__ = ("hashes", "refs", "mask")

    def __init__(self, path: str) -> None:
        self.hashes = _mapped(path, "Q")
        self.refs = _mapped(path + ".ref", "i")
        self.mask = len(self.hashes) - 1

    def ref(self, h: int) -> int | None:
        """The reference of ``h`` (``SELF`` when the slot holds it as it is), or None when
        ``h`` is not in the table."""
        hashes, mask = self.hashes, self.mask
        if not hashes:
            return None
        i = h & mask
        while True:
            found = hashes[i]
            if found == h:
                return SELF
            if found == h ^ 1:
                return self.refs[i]
            if found == 0:
                return None
            i = (i + 1) & mask


@dataclass(frozen=True)
class KeyFiles:
    """Where one dimension column's key index lives (picklable: travels to the workers)."""

    base: str
    dimension: str
    column: str
    count: int


class Ambiguous(str):
    """A match of several stored keys (trim or fold): one of them, as a hint."""


class KeyIndex:
    """Membership of one dimension column's keys, from its mapped files."""

    def __init__(self, files: KeyFiles) -> None:
        self.files = files
        self.tables = {mode: _Lookup(f"{files.base}.{mode}") for mode in MODES}
        self._off: Sequence[int] | None = None
        self._blob: mmap.mmap | None = None

    def match(self, value: str, mode: str) -> str | None:
        """The stored key ``value`` stands for (the text to land), ``Ambiguous`` when several
        do, None when none does. Modes ``exact``, ``trim``, ``casefold``: each tries the ones
        before it first (an exact match wins, then one but for blanks)."""
        text = unquoted(value)
        ref = self.tables["exact"].ref(key_hash(text))
        if ref is None and mode != "exact":
            ref = self.tables["trim"].ref(key_hash(trimmed(text)))
            if ref is None and mode == "casefold":
                ref = self.tables["fold"].ref(key_hash(folded(text)))
        if ref is None:
            return None
        if ref == SELF:
            return text
        if ref >= 0:
            return self._key(ref)
        return Ambiguous(self._key(-ref - 2))

    def contains(self, value: str, mode: str) -> bool:
        found = self.match(value, mode)
        return found is not None and not isinstance(found, Ambiguous)

    def near(self, value: str) -> str | None:
        """A key equal to ``value`` but for blanks around it or ASCII case, if there is one."""
        ref = self.tables["fold"].ref(key_hash(folded(unquoted(value))))
        if ref is None:
            return None
        return self._key(ref if ref >= 0 else -ref - 2)

    def _key(self, i: int) -> str:
        if self._off is None:
            self._off = _mapped(self.files.base + ".off", "Q")
            size = os.path.getsize(self.files.base + ".blob")
            if size:
                with open(self.files.base + ".blob", "rb") as f:
                    self._blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self._blob is None:
            return ""
        return self._blob[self._off[i]:self._off[i + 1]].decode("utf-8")


_OPEN: dict[str, KeyIndex] = {}


def key_index(files: KeyFiles) -> KeyIndex:
    """The process's one mapping of ``files`` (a new base, a new load: mapped again)."""
    index = _OPEN.get(files.base)
    if index is None:
        index = _OPEN[files.base] = KeyIndex(files)
    return index
