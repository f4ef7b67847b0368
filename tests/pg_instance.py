"""A private PostgreSQL (pgserver) that fault tests may stop and start again on the same data dir.

Never the machine's shared PostgreSQL: tests that take the database away use one of these, and
stop it by the PID in its ``postmaster.pid``. The DSN (a Unix socket in the data dir) survives a
restart, so a service keeps its configured ``database.dsn``.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path


class PgInstance:
    def __init__(self) -> None:
        # Not under pytest's private (0700) temp tree: as root, pgserver runs postgres as another
        # user. Short, so the socket path stays under the 107-byte limit.
        self.data_dir = Path(tempfile.mkdtemp(prefix="ingest-fault-pg-"))
        self.data_dir.chmod(0o755)
        self.dsn = ""

    def start(self) -> str:
        """Start (initdb on first use) and return the DSN once it accepts connections."""
        if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver warns without a private one
            runtime = Path(tempfile.gettempdir()) / f"ingest-fault-xdg-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        import pgserver
        from pgserver.postgres_server import PostgresServer

        # pgserver caches one handle per data dir; a stopped server needs a fresh one to start.
        PostgresServer._instances.pop(self.data_dir, None)
        server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        self.dsn = server.get_uri()
        return self.dsn

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self, sig: int = signal.SIGQUIT, timeout_s: float = 20.0) -> None:
        """Stop the postmaster by its PID: SIGQUIT is an immediate shutdown (a crash, as far as
        clients can tell: every connection drops at once), SIGINT a fast clean one."""
        stop_postmaster(self.data_dir, sig, timeout_s)

    def destroy(self) -> None:
        self.stop(signal.SIGINT)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def stop_postmaster(data_dir: Path, sig: int = signal.SIGQUIT, timeout_s: float = 20.0) -> None:
    """Signal the postmaster named in ``data_dir/postmaster.pid`` and wait for it to go (SIGKILL
    after ``timeout_s``). After a SIGKILL of its parent the postmaster lives on (INFRA.md)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
