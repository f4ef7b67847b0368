"""Small, real row checkers for the csvstream tests (the production checker comes from the
validation package). Top-level factories so worker processes can build them by name."""

from __future__ import annotations

import csv
import gc
import io
import os
import weakref
from typing import Any


class IntColumnsChecker:
    """``int_columns`` must hold integers; ``required`` must be non-empty; optionally upper-case
    ``upper`` in the output and append a ``checked`` column (to prove the output row is used)."""

    def __init__(self, header: list[str], int_columns: tuple[str, ...] = (),
                 required: tuple[str, ...] = (), upper: str | None = None,
                 crash_on: str | None = None) -> None:
        self.header = list(header)
        self._ints = [(header.index(c), c) for c in int_columns]
        self._required = [(header.index(c), c) for c in required]
        self._upper = header.index(upper) if upper else None
        self._crash_on = crash_on
        self.output_header = self.header + (["checked"] if upper else [])

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        if self._crash_on is not None and self._crash_on in row:
            os._exit(3)  # simulates a worker dying (segfault, OOM kill)
        errors: list[tuple[str | None, str, str]] = []
        for i, name in self._required:
            if not row[i].strip():
                errors.append((name, "required", "a value is required"))
        for i, name in self._ints:
            value = row[i]
            if value and not value.lstrip("-").isdigit():
                errors.append((name, "type_error", "must be an integer"))
        if errors or self._upper is None:
            return errors, row
        out = list(row)
        out[self._upper] = out[self._upper].upper()
        out.append("yes")
        return errors, out


class RejectAll:
    """Every record goes to the error output, so its cells and ``_line`` can be compared."""

    def __init__(self, header: list[str]) -> None:
        self.header = self.output_header = list(header)

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        return [(self.header[0], "rejected", "always")], row


class AcceptAll(RejectAll):
    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        return [], row


def int_checker(header: list[str], int_columns: tuple[str, ...] = (),
                required: tuple[str, ...] = (), upper: str | None = None,
                crash_on: str | None = None) -> IntColumnsChecker:
    return IntColumnsChecker(header, int_columns, required, upper, crash_on)


def reject_all(header: list[str]) -> RejectAll:
    return RejectAll(header)


def accept_all(header: list[str]) -> AcceptAll:
    return AcceptAll(header)


class RowsSummary:
    """A summary of a chunk's valid rows that is the rows themselves; given the chunk's valid
    output instead (``from_csv``, as the datasets' summary is), the rows read from it."""

    def __call__(self, rows: list[list[str]]) -> list[list[str]]:
        return [list(r) for r in rows]

    def from_csv(self, data: bytes, ncols: int) -> Any:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert {len(r) for r in rows} == {ncols}
        return rows


class AsSentChecker(IntColumnsChecker):
    """``IntColumnsChecker`` saying it never changes a row in place: the worker writes the valid
    rows of a plain chunk as the bytes that arrived. ``lie_on``: a cell value that makes it
    change the row in place anyway, to show which path wrote a row."""

    rows_unaltered = True

    def __init__(self, header: list[str], int_columns: tuple[str, ...] = (),
                 upper: str | None = None, lie_on: str | None = None,
                 summarise: bool | str = False) -> None:
        super().__init__(header, int_columns, upper=upper)
        self._lie_on = lie_on
        if summarise:  # the chunk's valid rows, copied, as its partials
            self.summarise = RowsSummary() if summarise == "from_csv" else \
                (lambda rows: [list(r) for r in rows])

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        if self._lie_on is not None and self._lie_on in row:
            row[row.index(self._lie_on)] = "changed"
        return super().check(row)


def as_sent_checker(header: list[str], int_columns: tuple[str, ...] = (),
                    upper: str | None = None, lie_on: str | None = None,
                    summarise: bool | str = False) -> AsSentChecker:
    return AsSentChecker(header, int_columns, upper, lie_on, summarise)


class _Node:
    """An object in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


_cycles: weakref.WeakSet = weakref.WeakSet()


class GcWitness:
    """Rejects every row with what the worker's collector is doing: whether it is enabled, and
    how many of the reference cycles this checker made (one a row) are still alive."""

    def __init__(self, header: list[str]) -> None:
        self.header = self.output_header = list(header)

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        message = f"enabled={gc.isenabled()} alive={len(_cycles)}"
        _cycles.add(_Node())
        return [(None, "gc", message)], row


def gc_witness(header: list[str]) -> GcWitness:
    return GcWitness(header)
