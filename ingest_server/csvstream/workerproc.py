"""One validation worker process, driven by the event loop over two pipes.

The worker is a plain child process running ``workermain``: no ``multiprocessing``, so no
resource-tracker process beside the server (~13 MB), and no feeder and result threads handing
every chunk and answer across the GIL: the event loop writes the jobs and reads the answers
itself, as soon as the pipes are ready (``add_reader``/``add_writer``), in pipes widened to a
chunk's size where the kernel allows it. Jobs queue in the pipe and are answered in the order
they were sent, so a pool can keep the next chunk waiting in the worker while it checks one.

A worker belongs to the event loop it was started in; ``usable()`` says whether it still works
in the running one (tests run each test in a loop of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any, Callable

from ingest_server.csvstream.jobs import ping
from ingest_server.csvstream.workermain import HEAD, dumps

log = logging.getLogger("ingest_server.csvstream")

_PIPE_BYTES = 1 << 20  # a default chunk: written and read in one go
_READ_BYTES = 1 << 20
# Where ``ingest_server`` is, for ``-m`` in the child before it gets this process's sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])


class WorkerDied(RuntimeError):
    """The worker process ended (crashed, was killed) before answering."""


def _widen(fd: int) -> None:
    with contextlib.suppress(OSError, AttributeError, ValueError):  # not Linux, or over the limit
        import fcntl  # noqa: PLC0415  (Unix only)

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    return env


class WorkerProcess:
    """``run(fn, *args)`` in the child, answers in order; ``ready`` resolves (to the pid) once
    the child has started and answered a first job."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        jobs_r, self._jobs = os.pipe()
        self._answers, answers_w = os.pipe()
        try:
            _widen(self._jobs)
            _widen(self._answers)
            self._proc = subprocess.Popen(
                # -P: the working directory is not put first on the child's path (an
                # ``ingest_server`` folder there would otherwise be the code the worker runs)
                [sys.executable, *subprocess._args_from_interpreter_flags(),  # as multiprocessing
                 "-P", "-m", "ingest_server.csvstream.workermain", str(jobs_r), str(answers_w)],
                pass_fds=(jobs_r, answers_w), stdin=subprocess.DEVNULL, env=_child_env())
        except BaseException:
            for fd in (self._jobs, self._answers):
                os.close(fd)
            raise
        finally:
            os.close(jobs_r)
            os.close(answers_w)
        self.pid = self._proc.pid
        os.set_blocking(self._jobs, False)
        os.set_blocking(self._answers, False)
        self._unsent = bytearray()
        self._received = bytearray()
        self._pending: deque[asyncio.Future] = deque()
        self.alive = True
        self._loop.add_reader(self._answers, self._readable)
        self._send(dumps(sys.path))
        self.ready: asyncio.Future = self.run(ping)

    @property
    def load(self) -> int:
        """Jobs sent and not answered yet."""
        return len(self._pending)

    def usable(self) -> bool:
        return self.alive and self._loop is asyncio.get_running_loop()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Send one job; the future of its answer (its exception if the job raised)."""
        fut = self._loop.create_future()
        if not self.alive:
            fut.set_exception(WorkerDied(f"validation worker {self.pid} is not running"))
            return fut
        self._pending.append(fut)
        self._send(dumps((fn, args)))
        return fut

    # --- pipes ------------------------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        if self._jobs < 0:
            return
        if self._unsent:
            self._unsent += HEAD.pack(len(payload))
            self._unsent += payload
            return
        head = HEAD.pack(len(payload))
        try:
            n = os.writev(self._jobs, (head, payload))
        except BlockingIOError:
            n = 0
        except OSError:  # the child is gone: its answers pipe ends too, and says so
            return
        if n < len(head) + len(payload):
            self._unsent += head[n:]
            self._unsent += memoryview(payload)[max(0, n - len(head)):]
            self._loop.add_writer(self._jobs, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self._jobs, self._unsent)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._unsent)
        del self._unsent[:n]
        if not self._unsent:
            self._loop.remove_writer(self._jobs)

    def _readable(self) -> None:
        try:
            data = os.read(self._answers, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._ended()
            return
        buf = self._received
        buf += data
        pos, end = 0, len(buf)
        with memoryview(buf) as view:
            while end - pos >= HEAD.size:
                (size,) = HEAD.unpack_from(view, pos)
                if end - pos - HEAD.size < size:
                    break
                try:
                    ok, value = pickle.loads(view[pos + HEAD.size:pos + HEAD.size + size])
                except Exception as exc:  # e.g. an exception class this process cannot import
                    ok, value = False, RuntimeError(f"a worker's answer could not be read: "
                                                    f"{exc!r}")
                pos += HEAD.size + size
                fut = self._pending.popleft()
                if not fut.done():  # a cancelled job's answer is dropped
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
        if pos:
            del buf[:pos]

    # --- the end ----------------------------------------------------------------------------

    def _ended(self, why: str = "ended") -> None:
        """The child is gone or going: fail what it still owed, close our ends, reap it."""
        if not self.alive:
            return
        self.alive = False
        for fut in self._pending:
            if not fut.done():
                fut.set_exception(WorkerDied(f"validation worker {self.pid} {why} while "
                                             "checking"))
        self._pending.clear()
        if not self._loop.is_closed():
            self._loop.remove_reader(self._answers)
            self._stop_writing()
        with contextlib.suppress(OSError):
            os.close(self._answers)
        if self._proc.poll() is None and self._loop.is_running():
            self._loop.run_in_executor(None, self._proc.wait)  # reaped when it exits

    def _stop_writing(self) -> None:
        if self._jobs >= 0:
            if not self._loop.is_closed():
                self._loop.remove_writer(self._jobs)
            with contextlib.suppress(OSError):
                os.close(self._jobs)
            self._jobs = -1
            self._unsent.clear()

    def kill(self) -> None:
        """Stop the child now (a job over its deadline, or a worker of a finished event loop)."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            if not self._loop.is_running():
                self._proc.wait()  # killed: at once; no loop here to reap it later
        self._ended("was stopped")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Let the child answer the jobs it holds and exit; killed after ``timeout_s``."""
        if self.usable():
            self._stop_writing()  # the end of the jobs pipe: the child exits when done
            try:
                await asyncio.wait_for(asyncio.to_thread(self._proc.wait), timeout_s)
            except TimeoutError:
                log.warning("validation worker %s did not exit: killed", self.pid)
        self.kill()
