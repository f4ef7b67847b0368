"""The checks a grammar adds to each event row (run in the validation workers).

* every dimension key cell is looked up in its dimension's keys (``keys.KeyIndex``, shared
  memory-mapped files): an unknown one is a row error ``unknown_reference`` naming the dimension,
  with a near match when there is one (``no school 's001'; 'S001' exists``);
* the time column ``date`` must be a date as cQube's users write it (``invalid_date``).

Integer metrics refusing ``12.7`` come from the grammar's ingestion spec (``coerce: integer``).
Each worker remembers the answers for the last few thousand distinct values of each column
(a district or grade column is then one dictionary lookup a row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .dates import FORMATS, parse_cqube_date
from .keys import KeyFiles, key_index

CACHE_SIZE = 4096
RowError = tuple[str | None, str, str]


@dataclass(frozen=True)
class KeyCheck:
    column: str  # the event file's column (row 4 of the grammar)
    files: KeyFiles


@dataclass(frozen=True)
class ProcessingChecks:
    """What a grammar checks in each row (picklable; part of the checker's identity)."""

    keys: tuple[KeyCheck, ...]
    key_match: str  # exact | trim | casefold
    date_column: str | None


class RowProcessing:
    def __init__(self, checks: ProcessingChecks, header: Sequence[str]) -> None:
        where = {name: i for i, name in enumerate(header)}
        self.mode = checks.key_match
        self.keys = [(where[k.column], k.column, k.files, key_index(k.files), {})
                     for k in checks.keys if k.column in where]
        self.date = where.get(checks.date_column) if checks.date_column else None
        self.date_column = checks.date_column

    def check(self, row: list[str]) -> list[RowError]:
        errors: list[RowError] = []
        for i, column, files, index, cache in self.keys:
            if i >= len(row):
                continue
            value = row[i]
            found = cache.get(value)
            if found is None:
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                found = cache[value] = self._look_up(value, files, index)
            if found:  # "" = known
                errors.append((column, "unknown_reference", found))
        if self.date is not None and self.date < len(row):
            try:
                parse_cqube_date(row[self.date])
            except ValueError:
                errors.append((self.date_column, "invalid_date",
                               f"{row[self.date]!r} is not a date ({FORMATS})"))
        return errors

    def _look_up(self, value: str, files: KeyFiles, index) -> str:
        if index.contains(value, self.mode):
            return ""
        message = f"no {files.dimension} {value!r} (dimensions.{files.dimension}.{files.column})"
        near = index.near(value)
        if near is not None:
            message += f"; {near!r} exists"
        return message
