"""The cqube profile (``compat.profile = "cqube"``): cQube's status codes and bodies on its routes.

A thin layer over the native views: the same handlers do the work (the same streaming pass, the
same upload records and objects); this package only shapes what is answered — the error bodies
(:mod:`.errors`, a middleware) and the answers of the routes whose success differs
(:mod:`.uploads`, :mod:`.specs`). The native profile never reaches this code.
"""

from __future__ import annotations

from aiohttp import web

from .. import appkeys


def is_cqube(app: web.Application) -> bool:
    return app[appkeys.SETTINGS].compat.profile == "cqube"


def handler_for(app: web.Application, name: str, native):
    """The handler to route for ``name``: ``native`` itself, or its cQube-shaped wrapper."""
    if not is_cqube(app):
        return native
    from . import specs, uploads  # noqa: PLC0415 — only the cqube profile loads them

    wrappers = {"new_programs": uploads.new_programs, "national_programs": uploads.national_programs,
                "file_status": uploads.file_status, "post_cqube_spec": specs.post_spec}
    return wrappers[name](native)
