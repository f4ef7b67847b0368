"""The cqube profile (``compat.profile = "cqube"``): cQube's status codes and bodies on its routes.

A thin layer over the native views: the same handlers do the work (the same streaming pass, the
same upload records and objects); this package only shapes what is answered — the error bodies
(:mod:`.error_answers`, a middleware) and the answers of the routes whose success differs
(:mod:`.upload_answers`, :mod:`.spec_answers`). The native profile never reaches this code.
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
    from . import spec_answers, upload_answers  # noqa: PLC0415 — only the cqube profile loads them

    wrappers = {"new_programs": upload_answers.new_programs,
                "national_programs": upload_answers.national_programs,
                "file_status": upload_answers.file_status,
                "post_cqube_spec": spec_answers.post_spec}
    return wrappers[name](native)
