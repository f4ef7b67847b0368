"""The main loop of a validation worker process (``workerproc.WorkerProcess`` starts it).

    python -m ingest_server.csvstream.workermain JOBS_FD ANSWERS_FD

Reads jobs from one pipe and writes answers to the other, one at a time, in order. A frame is a
4-byte big-endian length and a pickle: the first one the parent's ``sys.path`` (so the job's
functions import as they do there), then ``(function, args)`` per job, each answered with
``(True, result)`` or ``(False, exception)``. The worker exits at the end of the jobs pipe (the
parent closed it, or died). It imports only this module until a job names more (``jobs``:
the checks and ``process_chunk``), no asyncio and no multiprocessing.

The cyclic garbage collector runs between jobs, not during them: a job's rows are freed by
reference counting when it ends, but while a chunk's rows are all alive (a checker that looks
at the whole chunk first, the datasets' key checks) every few hundred allocations started a
collection, and the older generations' walked them all again and again: half the CPU of
splitting a chunk's lines (6,000-row chunks of the datasets benchmark: 1.11 -> 0.62 s per 1M
rows). Cycles a job made (a plugin's, an exception's traceback) are collected after its answer
is sent (the youngest generation: what the job left), everything every ``FULL_EVERY`` jobs.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import struct
import sys
from typing import Any, BinaryIO

HEAD = struct.Struct(">I")
FULL_EVERY = 64  # jobs between full collections (the others collect the youngest generation)


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def read_frame(f: BinaryIO) -> bytes | None:
    """The next frame's payload; None at the end of the pipe."""
    head = f.read(HEAD.size)
    if len(head) < HEAD.size:
        return None
    (size,) = HEAD.unpack(head)
    payload = f.read(size)
    return payload if len(payload) == size else None


def answer(job: list[bytes]) -> bytes:
    """The pickled answer to a job (its payload, taken out of the list: freed once read)."""
    try:
        fn, args = pickle.loads(job.pop())
        result: tuple[bool, Any] = (True, fn(*args))
    except Exception as exc:  # the job's own failure (a rejected file): the parent raises it
        result = (False, exc)
    try:
        return dumps(result)
    except Exception as exc:  # an answer that does not pickle: say so instead of dying
        return dumps((False, RuntimeError(f"the worker's answer could not be sent: {exc!r}")))


def main() -> None:
    # Ctrl-C reaches the whole process group; the parent decides how to stop, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    jobs_fd, answers_fd = int(sys.argv[1]), int(sys.argv[2])
    with os.fdopen(jobs_fd, "rb") as jobs, os.fdopen(answers_fd, "wb") as out:
        first = read_frame(jobs)
        if first is None:
            return
        sys.path[:] = pickle.loads(first)
        gc.disable()
        done = 0
        while (payload := read_frame(jobs)) is not None:
            job, payload = [payload], b""
            reply = answer(job)
            out.write(HEAD.pack(len(reply)))
            out.write(reply)
            out.flush()
            del reply
            done += 1
            gc.collect(0 if done % FULL_EVERY else 2)


if __name__ == "__main__":
    main()
