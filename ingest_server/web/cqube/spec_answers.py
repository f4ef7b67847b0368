"""Spec answers as cQube's spec service gives them.

How this meets our spec versioning: a re-post identical to the latest version changes nothing
and is answered as cQube answers any re-post, 400 ``Program already exists`` (``Dimension spec
already exists``). A re-post with a *changed* body — which cQube would refuse, keeping the old
grammar — is stored as a new version (as in the native profile) and answered like a first post
(``... created successfully``) with ``version`` beside it: uploads from then on use it, and earlier
uploads keep the version they were checked against.
"""

from __future__ import annotations

from aiohttp import web

from ..middleware import requires
from ..views.specs import register_cqube_spec

CREATED = {"event": ("Event grammar created successfully", "program"),
           "dimension": ("Dimension spec created successfully", "dimension_name"),
           "dataset": ("Dataset spec created successfully", "dataset_name")}
EXISTS = {"event": "Program already exists", "dimension": "Dimension spec already exists",
          "dataset": "Dataset spec already exists"}


@requires("spec")
async def post_spec(request: web.Request) -> web.Response:
    """``POST /api/spec/{kind}``: errors are cQube-shaped by the cqube errors middleware."""
    spec, created = await register_cqube_spec(request)
    if not created:
        return web.json_response({"message": EXISTS[spec.kind]}, status=400)
    message, name_field = CREATED[spec.kind]
    return web.json_response({"message": message, name_field: spec.name,
                              "version": spec.version})
