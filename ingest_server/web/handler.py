"""The type of an aiohttp handler, and the profile's choice of one for a route."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from . import appkeys

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def profile_handler(app: web.Application, native: Handler) -> Handler:
    """The handler of a route: ``native``, or what the compat profile answers there instead
    (``appkeys.PROFILE_HANDLERS``, filled by ``web/app.py``: the cqube profile's, by name)."""
    return app.get(appkeys.PROFILE_HANDLERS, {}).get(native.__name__, native)
