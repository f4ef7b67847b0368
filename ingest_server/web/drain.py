"""Graceful shutdown: on SIGTERM, finish the requests in flight, refuse new connections.

aiohttp's own shutdown (``web.run_app``) marks every connection closing first, and a closing
connection drops the bytes that still arrive: an upload whose body was still streaming failed
with 408 on every deploy. Here SIGTERM instead (1) turns ``/readyz`` to 503 so a load balancer
stops sending, (2) closes the listening socket so new connections are refused (a proxy retries
them on another replica) without resetting one the kernel already completed (``listener.py``),
(3) waits up to ``server.shutdown_timeout_s`` for the requests in flight, bodies still being read,
and only then (4) lets aiohttp close what is left.
Responses sent while draining carry ``Connection: close`` so clients do not reuse the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable

from aiohttp import web

from . import appkeys, connections
from .handler import Handler
from .inflight import Drain
from .listener import HANDSHAKE_S, refuse_new_handshakes

log = logging.getLogger("ingest_server")
# How long a connection accepted before the listener closed may take to send its request (a proxy
# connects, then writes; on a loaded machine its write can come late). Only a connection that
# has sent nothing yet makes the drain wait this long.
SETTLE_S = 3.0


@web.middleware
async def drain_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    drain = request.app[appkeys.DRAIN]
    drain.enter(request.transport)
    try:
        response = await handler(request)
        if drain.draining:
            response.force_close()
        if isinstance(response, web.Response) and not response.prepared:
            # Sent before the request stops counting: otherwise the drain could end, and
            # aiohttp's shutdown cut the connection, between the handler's return and the
            # answer's last byte. (A streamed answer is written by its handler; a file answer
            # sends itself.)
            with contextlib.suppress(ConnectionError):  # the client left: as aiohttp would
                await response.prepare(request)
                await response.write_eof()
        return response
    finally:
        drain.leave()


async def serve(app: web.Application, *, grace_s: float, host: str = "127.0.0.1",
                port: int = 8080, sock: socket.socket | None = None,
                on_started: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain as the module docstring says.

    ``on_started`` is called once the app has started (database, storage) and the socket listens.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    limits = app[appkeys.SETTINGS].server
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0,
                           **connections.runner_options(limits))
    try:
        await runner.setup()
        connections.guard(runner, limits)
        site = (web.SockSite(runner, sock) if sock is not None
                else web.TCPSite(runner, host, port))
        await site.start()
        if on_started is not None:
            on_started(site.name)
        await stop.wait()
        drain = app[appkeys.DRAIN]
        drain.draining = True
        deadline = time.monotonic() + grace_s
        # Connections the kernel completed but the loop has not accepted yet would be reset when
        # the listening socket closes (behind a proxy: a 502 for a request it already sent).
        # First no new handshake may complete (web/listener.py; not on a socket shared with other
        # workers, which keep serving on it), then those under way complete, then take in what
        # is queued; nothing awaits between that and the close.
        if sock is None and _refuse_new_handshakes(site):
            await asyncio.sleep(HANDSHAKE_S)  # the loop goes on accepting meanwhile
        adopted = _adopt_queued(site, runner)
        await site.stop()  # the listening socket closes: new connections are refused
        if adopted:
            await asyncio.gather(*adopted, return_exceptions=True)
        # Wait for the requests in flight, and give a connection accepted just before the
        # listener closed time to send its request (a proxy connects, then writes; under load
        # that can come after every other request has finished): cutting it would be a 502.
        settle = time.monotonic() + min(SETTLE_S, grace_s)
        log.info("shutting down: waiting up to %g s for %d request(s) in flight",
                 grace_s, drain.in_flight)
        while not _drained(drain, runner, settle):
            if time.monotonic() >= deadline:
                log.warning("shutdown grace period over: %d request(s) still in flight are cut",
                            drain.in_flight)
                break
            await asyncio.sleep(0.02)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()


def _drained(drain: Drain, runner: web.AppRunner, settle: float) -> bool:
    if drain.in_flight:
        return False
    if time.monotonic() >= settle or runner.server is None:
        return True
    return all(c.transport is None or c.transport in drain.served
               for c in runner.server.connections)


def _refuse_new_handshakes(site: web.BaseSite) -> bool:
    server = getattr(site, "_server", None)  # aiohttp keeps its asyncio.Server private
    sockets = list(server.sockets) if server is not None else []
    return bool(sockets) and all([refuse_new_handshakes(s) for s in sockets])


def _adopt_queued(site: web.BaseSite, runner: web.AppRunner) -> list[asyncio.Future]:
    """Accept every connection waiting in the listening sockets' queues and serve it."""
    server = getattr(site, "_server", None)  # aiohttp keeps its asyncio.Server private
    if server is None or runner.server is None:
        return []
    loop = asyncio.get_running_loop()
    pending = []
    for listening in server.sockets:
        queue = listening.dup()  # a socket.socket on the same listening socket, ours to close
        try:
            queue.setblocking(False)
            while True:
                try:
                    conn, _ = queue.accept()
                except (BlockingIOError, InterruptedError):
                    break
                conn.setblocking(False)
                pending.append(asyncio.ensure_future(
                    loop.connect_accepted_socket(runner.server, conn)))
        finally:
            queue.close()
    return pending
