"""``py-spy record`` of a server and its workers for the length of a block (the benches'
``--py-spy``): raw collapsed stacks, summarised by ``bench/pyspy_summary.py``."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path


class PySpy:
    """``py-spy record`` of the process ``pid`` and its children (collapsed stacks)."""

    def __init__(self, pid: int, out: Path, rate: int = 100, gil: bool = False) -> None:
        """``gil``: sample only the thread holding the GIL (Python's CPU, without the threads
        that wait for the disk or a lock, which py-spy otherwise counts as busy)."""
        self.cmd = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                    "--rate", str(rate), "--nonblocking", "-o", str(out),
                    *(["--gil"] if gil else [])]
        self.out = out
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # let it attach before the work starts

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output and exits
            self.proc.wait(60)
