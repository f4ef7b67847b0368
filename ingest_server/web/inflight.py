"""Requests in flight and whether the process is shutting down (see ``drain.py``)."""

from __future__ import annotations

import weakref


class Drain:
    """Requests in flight, the connections that have sent one, and whether shutting down."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        # Connections (their transports) that have started a request: at shutdown, an open
        # connection not in here was accepted and has not sent one yet.
        self.served: weakref.WeakSet = weakref.WeakSet()

    def enter(self, connection: object | None) -> None:
        self.in_flight += 1
        if connection is not None:
            self.served.add(connection)

    def leave(self) -> None:
        self.in_flight -= 1
