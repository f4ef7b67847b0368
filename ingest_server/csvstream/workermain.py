"""The main loop of a validation worker process (``workerproc.WorkerProcess`` starts it).

    python -m ingest_server.csvstream.workermain JOBS_FD ANSWERS_FD

Reads jobs from one pipe and writes answers to the other, one at a time, in order. A frame is a
4-byte big-endian length and a pickle: the first one the parent's ``sys.path`` (so the job's
functions import as they do there), then ``(function, args)`` per job, each answered with
``(True, result)`` or ``(False, exception)``. The worker exits at the end of the jobs pipe (the
parent closed it, or died). It imports only this module until a job names more (``jobs``:
the checks and ``process_chunk``), no asyncio and no multiprocessing.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from typing import Any, BinaryIO

HEAD = struct.Struct(">I")


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
        while (payload := read_frame(jobs)) is not None:
            job, payload = [payload], b""
            reply = answer(job)
            out.write(HEAD.pack(len(reply)))
            out.write(reply)
            out.flush()


if __name__ == "__main__":
    main()
