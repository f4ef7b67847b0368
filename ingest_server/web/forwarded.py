"""The client's address behind trusted load balancers (``server.trusted_proxies``).

Behind a proxy every request comes from the proxy's address, so per-address limits would lump
all clients together. X-Forwarded-For is read right to left, skipping the trusted hops, and the
first untrusted address is the client's; without trusted proxies the header is ignored (anyone
can write it).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: web.Request, trusted: tuple[str, ...]) -> str:
    remote = request.remote or ""
    networks = _networks(trusted)
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [h.strip() for value in request.headers.getall("X-Forwarded-For", [])
            for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
        remote = hop
    return remote
