"""The folder ``--workers N`` processes share their metrics through (prometheus-client's
multiprocess mode), managed by the parent process.

The parent sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start (each reads it when it
imports prometheus-client), marks a worker dead when it exits (so live gauges drop it), and
removes the folder at the end. An operator's own ``PROMETHEUS_MULTIPROC_DIR`` is used instead
and emptied at start: counts of an earlier run must not add up with this one's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[Path]:
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="ingest-metrics-"))
        os.environ[ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            os.environ.pop(ENV, None)
            shutil.rmtree(path, ignore_errors=True)


def worker_exited(path: Path, pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))
