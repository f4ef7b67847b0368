"""The datasets' partial aggregates of an upload's valid rows, computed while it streams.

The checker of an event file with dataset tables (``ProcessingChecks.datasets``) carries a
``DatasetSummary`` as its ``summarise``: each validation worker calls it on its chunk's valid rows
(``csvstream.worker``), and the upload merges the chunks' partials in its ``collector()``
(``aggregate.Aggregator``), which the datasets step applies after publishing.
"""

from __future__ import annotations

from typing import Sequence

from .aggregate import Aggregator, Partial, row_groups
from .dates import parse_cqube_date
from .rowcheck import ProcessingChecks


class DatasetSummary:
    """The datasets' partial aggregates of a file with ``header`` (the valid rows' header).
    Called in a worker on each chunk's valid rows (``summarise(rows)``; None when they cannot be
    aggregated: the datasets step then reads the landed file and says why); ``collector()``
    merges them where the upload runs (``aggregate.Aggregator``)."""

    def __init__(self, checks: ProcessingChecks, header: Sequence[str]) -> None:
        self.checks, self.header = checks, list(header)
        self.grouping, _ = row_groups(checks.datasets, header, checks.metric)

    def __call__(self, rows: list[list[str]]) -> Partial | None:
        try:
            return self.grouping(rows)
        except (ValueError, IndexError):  # a metric that is not a number (a plugin's row)
            return None

    def from_csv(self, data: bytes, ncols: int) -> Partial | None:
        """``self(rows)`` of the rows of CSV bytes of ``ncols`` cells a line: a chunk's valid
        output, which the worker then need not keep as lists (``RowGroups.from_csv``)."""
        try:
            return self.grouping.from_csv(data, ncols)
        except (ValueError, IndexError):
            return None

    def collector(self) -> Aggregator:
        return Aggregator(self.checks.datasets, self.header, parse_date=parse_cqube_date,
                          week=self.checks.week, metric=self.checks.metric)


def dataset_summary(checks: ProcessingChecks | None,
                    header: Sequence[str]) -> DatasetSummary | None:
    """The summary of ``checks``' datasets for valid rows under ``header``, if it can be made."""
    if checks is None or not checks.datasets:
        return None
    try:
        return DatasetSummary(checks, header)
    except ValueError:  # a column the tables need is not in the valid file
        return None
