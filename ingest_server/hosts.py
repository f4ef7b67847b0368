"""What counts as a plain ``host[:port]`` and as a usable ``server.public_url`` (no aiohttp here:
the configuration checks it too)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A DNS name or IPv4 address, or a bracketed IPv6 address; then an optional port.
HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]{{2,45}}\])(?::(\d{{1,5}}))?")


def is_plain_host(value: str) -> bool:
    """``host[:port]`` and nothing else: no path, query, user info, space or non-ASCII text."""
    match = HOST.fullmatch(value) if value.isascii() else None
    return match is not None and int(match.group(1) or 0) <= 65535


def public_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be ``server.public_url`` (None: it can; empty means not set)."""
    if not value:
        return None
    if not value.isascii() or any(ch.isspace() for ch in value):
        return "must be an ASCII URL without spaces"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL with a host"
    if parts.query or parts.fragment or "@" in parts.netloc:
        return "must have no query, fragment or user info"
    if not is_plain_host(parts.netloc):
        return "must name a valid host[:port]"
    return None
