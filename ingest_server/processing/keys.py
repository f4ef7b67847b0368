"""The keys of a dimension table in a compact form every validation worker shares.

A dimension of 2 million keys must not cost each worker 2 million Python strings. So its keys are
kept as sorted 64-bit hashes in files (``<base>.exact``, ``.trim``, ``.fold``: 8 bytes a key
each) that every process maps read-only: the pages live once in the OS page cache, whatever the
number of workers. A lookup is a binary search (``bisect`` on a ``memoryview``). For near-match
hints (``'S001' exists``), ``.fold`` is paired with offsets (``.off``) into the original keys
(``.blob``), read only for a key that is missing.

The hash is the first 8 bytes of MD5 of the UTF-8 text, computed by PostgreSQL when the files are
built (``('x' || substr(md5(k), 1, 16))::bit(64)::bigint``) and by Python when a cell is looked
up. Two keys sharing a hash (about n²/2⁶⁵: 10⁻⁷ for 2 million keys) would let an unknown key
pass; never the other way round. ``trim`` strips spaces and tabs; ``casefold`` also folds ASCII
letters (A-Z), the same way in PostgreSQL (``translate``) and Python.
"""

from __future__ import annotations

import array
import bisect
import csv
import hashlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(ASCII_UPPER, ASCII_UPPER.lower())
BLANKS = " \t"
SUFFIXES = (".exact", ".trim", ".fold", ".off", ".blob")
# Each hash file has a directory (``<file>.dir``): for each value of a hash's top 16 bits, where
# its run starts, so a lookup searches a bucket of about n/65536 hashes, not all n.
BUCKETS = 1 << 16


class _Directory:
    """Counts hashes per bucket as sorted hashes stream by; written as n+1 start offsets."""

    def __init__(self) -> None:
        self.counts = array.array("Q", bytes(8 * BUCKETS))

    def add(self, hashes: array.array) -> None:
        counts = self.counts
        for h in hashes:
            counts[(h >> 48) + 32768] += 1  # signed top 16 bits → 0..65535, in sorted order

    def write(self, path: str) -> None:
        starts = array.array("Q", [0])
        total = 0
        for c in self.counts:
            total += c
            starts.append(total)
        with open(path, "wb") as f:
            starts.tofile(f)


def key_hash(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode("utf-8", "surrogatepass")).digest()[:8],
                          "big", signed=True)


def trimmed(text: str) -> str:
    return text.strip(BLANKS)


def folded(text: str) -> str:
    return text.strip(BLANKS).translate(_FOLD)


def sql_hash(expr: str) -> str:
    return f"('x' || substr(md5({expr}), 1, 16))::bit(64)::bigint"


def sql_trim(expr: str) -> str:
    return f"btrim({expr}, E' \\t')"


def sql_fold(expr: str) -> str:
    return f"translate({sql_trim(expr)}, '{ASCII_UPPER}', '{ASCII_UPPER.lower()}')"


# -- building (main process, in a thread) ------------------------------------------------------

def write_sorted_hashes(text_path: Path, out_path: Path) -> int:
    """PostgreSQL's COPY text output of sorted hashes, one a line → native int64 file."""
    n = 0
    directory = _Directory()
    with open(text_path, "rb") as src, open(out_path, "wb") as out:
        while True:
            lines = src.readlines(1 << 20)
            if not lines:
                break
            arr = array.array("q", map(int, lines))
            arr.tofile(out)
            directory.add(arr)
            n += len(arr)
    directory.write(str(out_path) + ".dir")
    return n


def write_fold_index(csv_path: Path, base: Path) -> int:
    """COPY CSV output ``hash,key`` sorted by hash → ``.fold`` hashes, ``.off`` offsets (n+1)
    into ``.blob`` (the keys' UTF-8 bytes)."""
    n = 0
    offset = 0
    directory = _Directory()
    with open(csv_path, newline="", encoding="utf-8") as src, \
            open(str(base) + ".fold", "wb") as fold, open(str(base) + ".off", "wb") as off, \
            open(str(base) + ".blob", "wb") as blob:
        hashes, offsets = array.array("q"), array.array("Q", [0])
        for h, key in csv.reader(src):
            data = key.encode("utf-8")
            blob.write(data)
            offset += len(data)
            hashes.append(int(h))
            offsets.append(offset)
            n += 1
            if len(hashes) >= 65536:
                hashes.tofile(fold)
                offsets.tofile(off)
                directory.add(hashes)
                hashes, offsets = array.array("q"), array.array("Q")
        hashes.tofile(fold)
        offsets.tofile(off)
        directory.add(hashes)
    directory.write(str(base) + ".fold.dir")
    return n


# -- looking up (every worker) -----------------------------------------------------------------

def _mapped(path: str, typecode: str) -> Sequence[int]:
    size = os.path.getsize(path)
    if size == 0:
        return ()
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return memoryview(mm).cast(typecode)


class _Hashes:
    """One mapped hash file and its directory."""

    __slots__ = ("arr", "dir")

    def __init__(self, path: str) -> None:
        self.arr = _mapped(path, "q")
        self.dir = _mapped(path + ".dir", "Q") if self.arr else ()

    def find(self, h: int) -> int:
        """The index of ``h``, or -1."""
        if not self.arr:
            return -1
        b = (h >> 48) + 32768
        lo, hi = self.dir[b], self.dir[b + 1]
        i = bisect.bisect_left(self.arr, h, lo, hi)
        return i if i < hi and self.arr[i] == h else -1


@dataclass(frozen=True)
class KeyFiles:
    """Where one dimension column's key index lives (picklable: travels to the workers)."""

    base: str
    dimension: str
    column: str
    count: int


class KeyIndex:
    """Membership of one dimension column's keys, from its mapped files."""

    def __init__(self, files: KeyFiles) -> None:
        self.files = files
        self.exact = _Hashes(files.base + ".exact")
        self.trim = _Hashes(files.base + ".trim")
        self.fold = _Hashes(files.base + ".fold")
        self._off: Sequence[int] | None = None
        self._blob: mmap.mmap | None = None

    def contains(self, value: str, mode: str) -> bool:
        if mode == "exact":
            return self.exact.find(key_hash(value)) >= 0
        if mode == "trim":
            return self.trim.find(key_hash(trimmed(value))) >= 0
        return self.fold.find(key_hash(folded(value))) >= 0

    def near(self, value: str) -> str | None:
        """A key equal to ``value`` but for blanks around it or ASCII case, if there is one."""
        i = self.fold.find(key_hash(folded(value)))
        if i < 0:
            return None
        if self._off is None:
            self._off = _mapped(self.files.base + ".off", "Q")
            with open(self.files.base + ".blob", "rb") as f:
                self._blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) \
                    if os.path.getsize(self.files.base + ".blob") else None
        start, end = self._off[i], self._off[i + 1]
        if self._blob is None:
            return ""
        return self._blob[start:end].decode("utf-8")


_OPEN: dict[str, KeyIndex] = {}


def key_index(files: KeyFiles) -> KeyIndex:
    """The process's one mapping of ``files`` (a new base, a new load: mapped again)."""
    index = _OPEN.get(files.base)
    if index is None:
        index = _OPEN[files.base] = KeyIndex(files)
    return index
