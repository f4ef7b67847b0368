"""Upload progress on stderr: a rich bar on a terminal, a few plain lines otherwise.

stdout is kept for the result (tables or JSON) so it can be piped; a log file or CI output gets
at most five lines (each quarter and the end), never a bar redrawn thousands of times.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol, TextIO

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)


class Reporter(Protocol):
    def __enter__(self) -> "Reporter": ...
    def __exit__(self, *exc: object) -> None: ...
    def advance(self, nbytes: int) -> None: ...


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class NoProgress:
    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass


class PlainProgress:
    """One line at each quarter of the file: sent, total, percentage, rate and ETA."""

    def __init__(self, label: str, total: int, stream: TextIO,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.stream, self.clock = label, total, stream, clock
        self.sent = 0
        self.next_quarter = 1
        self.started = clock()

    def __enter__(self) -> "PlainProgress":
        self.started = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        self.sent += nbytes
        if self.total <= 0 or self.sent * 4 < self.next_quarter * self.total:
            return
        while self.next_quarter <= 4 and self.sent * 4 >= self.next_quarter * self.total:
            self.next_quarter += 1
        elapsed = max(self.clock() - self.started, 1e-6)
        rate = self.sent / elapsed
        eta = (self.total - self.sent) / rate if rate > 0 else 0.0
        pct = 100 * self.sent // self.total
        print(f"ingest: {self.label}: {pct}% ({human_bytes(self.sent)} of "
              f"{human_bytes(self.total)}, {human_bytes(rate)}/s, ETA {_duration(eta)})",
              file=self.stream, flush=True)


class BarProgress:
    """rich's bar with bytes, rate and time remaining, drawn on stderr."""

    def __init__(self, label: str, total: int, console: Console) -> None:
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=console)
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> "BarProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.task, nbytes)


def reporter_for(label: str, total: int, stream: TextIO, *, enabled: bool = True) -> Reporter:
    """The right reporter for ``stream``: a bar on a terminal, plain lines elsewhere."""
    if not enabled:
        return NoProgress()
    if stream.isatty():
        return BarProgress(label, total, Console(file=stream))
    return PlainProgress(label, total, stream)
