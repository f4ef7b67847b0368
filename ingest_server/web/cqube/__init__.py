"""The cqube profile (``compat.profile = "cqube"``): cQube's status codes and bodies on its routes.

A thin layer over the native views, set up by ``web/app.py`` only in that profile (the native
views never import it): the same upload path and stores do the work (the same streaming pass,
the same upload records, metrics and hooks, the same objects); this package only shapes what is
answered — the error bodies (:mod:`.error_answers`, a middleware), the answers of the routes whose
success differs (:mod:`.upload_answers`, :mod:`.spec_answers`, built from the native results),
getRawData's grant (:mod:`.rawdata_answers`) and cQube's ``/api/spec/schedule``
(:mod:`.schedule`).
"""

from __future__ import annotations

from aiohttp import web

from .. import appkeys
from . import rawdata_answers, schedule, spec_answers, upload_answers


def setup(app: web.Application) -> None:
    """Before the native views: cQube's answers replace the native handlers of the same name
    (``handler.profile_handler``), and ``/api/spec/schedule`` comes before ``/api/spec/{kind}``,
    which would take the path otherwise."""
    app[appkeys.PROFILE_HANDLERS] = {
        "new_programs": upload_answers.new_programs,
        "national_programs": upload_answers.national_programs,
        "file_status": upload_answers.file_status,
        "get_raw_data": rawdata_answers.get_raw_data,
        "post_cqube_spec": spec_answers.post_spec}
    schedule.setup(app)
