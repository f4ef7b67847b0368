"""Limits on connections, before any request exists: the header phase, how many at once, and
what an accept failure writes to the log.

- **Header phase** (``server.header_timeout_s``): aiohttp's keep-alive timer runs from the moment
  a connection opens and from each answer, is not reset by incoming bytes, and closes the
  connection only while it waits for a request's headers. Set to the header timeout, it drops a
  connection that sends nothing, or trickles a header line that never ends (slowloris), or idles
  between requests longer than that. (aiohttp's own default is an hour.) A request whose headers
  are in is not affected: its body has ``limits.body_idle_timeout_s``.
- **Connections at once** (``server.max_connections``, per process): past it, a new connection is
  answered ``503 too_many_connections`` with ``Retry-After: 1`` and closed before its request is
  read, so descriptors stay free for the database, storage and the connections being served.
- **Accept failures** (EMFILE and the like): asyncio logs each one with a traceback, up to the
  listen backlog (128) times a second while descriptors are exhausted (65 MB of log in 10 s).
  They are logged here once per ``server.accept_error_log_interval_s`` as one line with the
  number of failures since the last line; other loop errors go to the default handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from ..config import ServerConfig
from ..errors import ERROR_CODES

log = logging.getLogger("ingest_server")
LINGER_S = 1.0
ACCEPT_FAILURE = "socket.accept() out of system resource"  # asyncio's message for EMFILE & co.
TOO_MANY_BODY = json.dumps({"error": {
    "code": "too_many_connections",
    "message": "the server has too many open connections: try again in a second",
    "details": {}}}).encode()
TOO_MANY = (b"HTTP/1.1 %d Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
            % (ERROR_CODES["too_many_connections"], len(TOO_MANY_BODY))) + TOO_MANY_BODY


def runner_options(cfg: ServerConfig) -> dict[str, Any]:
    """Keyword arguments of ``web.AppRunner`` for the header-phase bound."""
    return {"keepalive_timeout": cfg.header_timeout_s}


def cap_connections(server: web.Server, limit: int) -> None:
    """Past ``limit`` open connections, answer a new one 503 and close it unread."""
    admit = server.connection_made

    def connection_made(handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        admit(handler, transport)
        if len(server.connections) > limit:
            # Nothing of it is read: the answer, our end closed for writing, and the socket
            # closed a moment later (closing at once, with the client's request unread in our
            # buffer, would reset the connection before the client read the answer).
            transport.pause_reading()
            transport.write(TOO_MANY)
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    server.connection_made = connection_made  # type: ignore[method-assign]


class AcceptFailureLog:
    """A loop exception handler: accept failures once per interval, the rest as usual."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.last = float("-inf")
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_FAILURE:
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self.last < self.interval_s:
            self.suppressed += 1
            return
        exc = context.get("exception")
        log.error("accept failed: %s (%d more failure(s) since the last such line; the server "
                  "retries every second, new connections wait in the backlog meanwhile)",
                  exc.strerror if isinstance(exc, OSError) and exc.strerror else exc,
                  self.suppressed)
        self.last, self.suppressed = now, 0


def guard(runner: web.AppRunner, cfg: ServerConfig) -> None:
    """Install the connection cap and the accept-failure log (after ``runner.setup()``)."""
    assert runner.server is not None
    cap_connections(runner.server, cfg.max_connections)
    asyncio.get_running_loop().set_exception_handler(
        AcceptFailureLog(cfg.accept_error_log_interval_s))
