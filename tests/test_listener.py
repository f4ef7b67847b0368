"""web/listener.py on real sockets: once a listening socket refuses new handshakes, a connection
already completed is still accepted and served, a new one never completes (so it cannot be reset
after its request was sent), and after the close it is refused (what a proxy retries)."""

from __future__ import annotations

import socket
import sys

import pytest

from ingest_server.web.listener import refuse_new_handshakes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux filter")


def test_a_new_handshake_never_completes_and_the_queued_one_is_served():
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    queued = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        assert refuse_new_handshakes(listening)
        late = socket.socket()
        late.settimeout(0.3)
        with pytest.raises(TimeoutError):  # its SYN is dropped: no connection to reset later
            late.connect(("127.0.0.1", port))
        late.close()
        accepted, _ = listening.accept()
        with accepted:
            queued.sendall(b"POST / HTTP/1.1\r\n")
            assert accepted.recv(100) == b"POST / HTTP/1.1\r\n"
            accepted.sendall(b"HTTP/1.1 200 OK\r\n")
            assert queued.recv(100) == b"HTTP/1.1 200 OK\r\n"
        listening.close()
        again = socket.socket()
        again.settimeout(2)
        with pytest.raises(ConnectionRefusedError):  # the port is closed: a proxy tries the next
            again.connect(("127.0.0.1", port))
        again.close()
    finally:
        queued.close()
        listening.close()
