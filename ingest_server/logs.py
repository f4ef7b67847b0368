"""Structured logs: one JSON object per line, each carrying the request id of its request.

Log aggregators parse JSON lines without per-format rules, and the request id joins a client's
``X-Request-ID`` to every line its request caused (access line, upload outcome, errors). The id
travels in a context variable, set once per request by the access-log middleware, so domain code
logs normally and never passes it around.

What goes in is chosen by the caller through ``extra={"fields": {...}}``; nothing here reads
headers or bodies, so tokens, secrets and row contents only appear if someone logs them by name.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import IO, Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                         default=None)
ACCESS_LOGGER = "ingest_server.access"
_HANDLER_NAME = "ingest_server.json"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id"?, ...fields, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        # default=str: a stray datetime or Path must not lose the line.
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


def configure_logging(level: str, stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines to ``stream`` (stderr) at ``level`` for the whole process.

    Replaces an earlier handler of ours, so calling it again (tests, a re-exec) never doubles
    every line; other handlers (pytest's capture) are left alone.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """One structured line: ``msg`` names the event, ``fields`` are its data."""
    logger.log(level, msg, extra={"fields": fields})
