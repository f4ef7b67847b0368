"""Closing a listening socket without resetting a connection a client believes is open.

When a listening socket closes, the kernel resets every connection it has completed and not yet
handed to ``accept()``, and every handshake still in progress. A client whose handshake finished
in that instant has already sent its request: behind a proxy that streams request bodies (nginx
with ``proxy_request_buffering off``), a POST that was sent cannot be retried on another replica,
so the client gets a 502. Taking in what is queued just before the close leaves that instant open
(any connection completed between the last ``accept()`` and the close), and a loaded machine can
stretch it to a whole scheduler time slice.

``refuse_new_handshakes`` closes it on Linux: a socket filter on the listening socket drops every
new SYN (a TCP segment with SYN and without ACK), so no new connection can complete, while the
handshakes already under way complete and are accepted as usual. A client whose SYN was dropped
sends it again after about a second and then finds the port closed: a refused connection, which a
proxy retries on the next replica (nothing was sent). Elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
import sys

log = logging.getLogger("ingest_server")

SO_ATTACH_FILTER = 26  # Linux's <asm-generic/socket.h>; Python's socket module does not name it
# Classic BPF, run by the kernel with the packet starting at the TCP header (byte 13: the flags).
_DROP_SYN = [
    (0x30, 0, 0, 13),          # ldb [13]          A = TCP flags
    (0x54, 0, 0, 0x12),        # and #0x12         A &= SYN|ACK
    (0x15, 0, 1, 0x02),        # jeq #0x02, 0, 1   a SYN without ACK?
    (0x06, 0, 0, 0),           # ret #0            yes: drop it
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1           anything else: keep it whole
]
# How long a handshake already under way may take to complete once new ones are refused: the
# round trip of the last SYN-ACK (far below a millisecond on one host, a few on a network).
HANDSHAKE_S = 0.05


def refuse_new_handshakes(listening: socket.socket) -> bool:
    """Make ``listening`` drop new connection attempts; True if the system allowed it."""
    if not sys.platform.startswith("linux"):
        return False
    code = b"".join(struct.pack("HBBI", *insn) for insn in _DROP_SYN)
    buffer = ctypes.create_string_buffer(code, len(code))
    program = struct.pack("HL", len(_DROP_SYN), ctypes.addressof(buffer))  # struct sock_fprog
    try:
        listening.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
    except OSError as e:
        log.debug("cannot filter new connections on the listening socket: %s", e)
        return False
    return True
