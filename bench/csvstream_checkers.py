"""The row checkers of ``bench_csvstream.py``, importable by name in the worker processes."""

from __future__ import annotations


class TrivialChecker:
    def __init__(self, header: list[str]) -> None:
        self.header = self.output_header = list(header)

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        return [], row


class NumbersChecker(TrivialChecker):
    """Roughly the bench spec's number columns, hand-written: float() must accept them."""

    def __init__(self, header: list[str]) -> None:
        super().__init__(header)
        self._cols = [(header.index(c), c) for c in
                      ("total_students", "students_present", "attendance_pct")]

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        errors = []
        for i, name in self._cols:
            try:
                float(row[i])
            except ValueError:
                errors.append((name, "type_error", "must be a number"))
        return errors, row
