"""Peak memory of a process tree (a server and its worker processes), sampled from a thread.

``ru_maxrss`` of children is only known after they exit and is a per-process maximum, so it
cannot give the peak of the *sum*; sampling every ~50 ms can. Each process's ``VmHWM`` (its own
kernel-kept high-water mark, lifetime) is read too, as a check on what the sampling may miss.
psutil is used when installed; otherwise ``/proc`` is read directly (Linux).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is only a convenience here
    psutil = None

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def _children_proc(pid: int) -> list[int]:
    """Descendants of ``pid`` from /proc/<pid>/task/*/children (recursive)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def tree_pids(pid: int) -> list[int]:
    if psutil is not None:
        try:
            return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    return [pid] + _children_proc(pid)


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` (clock ticks), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def status_kib(pid: int, key: str, name: str = "status") -> int | None:
    """A ``kB`` field of /proc/<pid>/<name>, e.g. ``VmHWM`` of status, ``Pss`` of smaps_rollup."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cmd_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in argv if a)
    if "multiprocessing" in text or "csvstream.workermain" in text:
        return "resource_tracker" if "resource_tracker" in text else "worker"
    return "server" if "ingest_server" in text or "raw_sink" in text else text[:40]


@dataclass
class TreePeak:
    tree_bytes: int = 0                      # max over samples of the sum over the tree
    start_tree_bytes: int = 0                # the sum at the first sample (before the work)
    single_bytes: int = 0                    # max over samples of the largest process
    # RSS counts the shared pages (interpreter, libraries) once per process; PSS shares them out,
    # so its sum is what the tree really costs the machine.
    pss_tree_bytes: int = 0
    samples: int = 0
    hwm_kib: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (name, VmHWM)
    # CPU used inside the window, per process: a figure the other jobs on the machine do not
    # distort the way they distort wall time.
    ticks: dict[int, list[int]] = field(default_factory=dict)  # pid -> [first, last]

    def cpu_seconds(self) -> float:
        return sum(last - first for first, last in self.ticks.values()) / TICKS

    def cpu_by_name(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (first, last) in self.ticks.items():
            name = self.hwm_kib.get(pid, ("?", 0))[0]
            out[name] = out.get(name, 0.0) + (last - first) / TICKS
        return out

    def hwm_text(self) -> str:
        return ", ".join(f"{name} {kib / 1024:.0f}" for _, (name, kib) in sorted(self.hwm_kib.items()))


class TreeSampler:
    """``with TreeSampler(pid) as s: ...`` then ``s.peak``; sampling runs in a daemon thread."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = TreePeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self, first: bool = False) -> None:
        pids = tree_pids(self.pid)
        sizes = [s for s in map(rss_bytes, pids) if s is not None]
        if not sizes:
            return
        p = self.peak
        p.samples += 1
        if first:
            p.start_tree_bytes = sum(sizes)
        p.tree_bytes = max(p.tree_bytes, sum(sizes))
        p.single_bytes = max(p.single_bytes, max(sizes))
        pss = [status_kib(pid, "Pss", "smaps_rollup") for pid in pids]
        p.pss_tree_bytes = max(p.pss_tree_bytes, 1024 * sum(x or 0 for x in pss))
        for pid in pids:
            ticks = cpu_ticks(pid)
            if ticks is not None:
                # A process born inside the window spent all its CPU inside it.
                p.ticks.setdefault(pid, [ticks if first else 0, ticks])[1] = ticks
            hwm = status_kib(pid, "VmHWM")
            if hwm is not None:
                name = p.hwm_kib[pid][0] if pid in p.hwm_kib else cmd_name(pid)
                p.hwm_kib[pid] = (name, hwm)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self.sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

