"""The absolute address of our own routes, for links we hand out (getRawData's local links).

From ``server.public_url`` when it is configured (the address clients use, whatever proxy is in
between). Otherwise from the request's ``Host`` header, but only a plain ``host[:port]`` (a DNS
name, an IPv4 address or a bracketed IPv6 one): a Host carrying a path, a query, user info,
spaces or non-ASCII text, or none at all, is refused with 400 ``invalid_host`` rather than
copied into a link.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from ..errors import BadRequest
from ..hosts import is_plain_host


def base_url(request: web.Request, public_url: str) -> str:
    """Scheme, host and base path of our links, without a trailing slash."""
    if public_url:
        return public_url.rstrip("/")
    host = request.headers.get("Host", "")
    if not is_plain_host(host):
        raise BadRequest("the Host header is not a plain host[:port], so no link can be built "
                         "from it; the operator can set server.public_url",
                         code="invalid_host")
    return str(URL.build(scheme=request.scheme, authority=host))
