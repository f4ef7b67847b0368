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

from .datasets import DatasetTable
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
    """What a grammar checks in each row (picklable; part of the checker's identity), and the
    dataset tables whose partial aggregates the workers compute from the valid rows."""

    keys: tuple[KeyCheck, ...]
    key_match: str  # exact | trim | casefold
    date_column: str | None
    datasets: tuple[DatasetTable, ...] = ()
    metric: str = "number"  # processing.metric
    week: str = "cqube"     # processing.week


class RowProcessing:
    def __init__(self, checks: ProcessingChecks, header: Sequence[str]) -> None:
        where = {name: i for i, name in enumerate(header)}
        self.mode = checks.key_match
        # (cell index, column, code, answers so far, how to answer a new value): every check is
        # a dictionary lookup for a value seen lately, the slow path only for new values.
        self.checks = [(where[k.column], k.column, "unknown_reference", {},
                        self._key_lookup(k.files, key_index(k.files)))
                       for k in checks.keys if k.column in where]
        if checks.date_column in where:
            self.checks.append((where[checks.date_column], checks.date_column, "invalid_date",
                                {}, _date_problem))
        self.width = 1 + max((c[0] for c in self.checks), default=-1)

    def check(self, row: list[str]) -> list[RowError]:
        if len(row) < self.width:  # not reached for a row fitted to the header
            return []
        errors: list[RowError] = []
        for i, column, code, cache, answer in self.checks:
            value = row[i]
            found = cache.get(value)
            if found is None:
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                found = cache[value] = answer(value)
            if found:  # "" = fine
                errors.append((column, code, found))
        return errors

    def _key_lookup(self, files: KeyFiles, index):
        mode = self.mode

        def answer(value: str) -> str:
            if index.contains(value, mode):
                return ""
            message = (f"no {files.dimension} {value!r} "
                       f"(dimensions.{files.dimension}.{files.column})")
            near = index.near(value)
            if near is not None:
                message += f"; {near!r} exists"
            return message

        return answer


def _date_problem(value: str) -> str:
    try:
        parse_cqube_date(value)
    except ValueError:
        return f"{value!r} is not a date ({FORMATS})"
    return ""
