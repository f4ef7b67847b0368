"""``POST /api/spec/schedule`` in the cqube profile: cQube's spec service route that sets the CRON
schedule of a NiFi processor group (``processor_group_name``, ``scheduled_at``).

We run no NiFi, so there is nothing to schedule. An invalid body is answered as cQube answers it
(400 ``{"message": [AJV errors]}`` against its ``scheduleSchema``); a valid one gets 501
``not_supported`` saying where scheduling lives — or, with ``processing.enabled``, that no
schedule is needed (every landed upload is processed at once).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...cqube import ajv
from ...errors import status_of
from .. import appkeys
from ..middleware import requires, request_id_of
from ..body import read_json
from .error_answers import nest_body

# cQube's scheduleSchema (spec-ms src/utils/spec-data.ts): property order is AJV's error order.
_FIELDS = ("processor_group_name", "scheduled_at", "program_name")
_REQUIRED = ("processor_group_name", "scheduled_at")


def schedule_errors(body: Any) -> list[dict[str, Any]]:
    """AJV's errors (``allErrors``) for ``body`` against cQube's ``scheduleSchema``."""
    if not isinstance(body, dict):
        return [{"instancePath": "", "schemaPath": "#/type", "keyword": "type",
                 "params": {"type": "object"}, "message": "must be object"}]
    errors = [ajv.required(name) for name in _REQUIRED if name not in body]
    for name in _FIELDS:
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, str):
            errors.append({"instancePath": f"/{name}", "schemaPath": f"#/properties/{name}/type",
                           "keyword": "type", "params": {"type": "string"},
                           "message": "must be string"})
        elif not value.strip():  # cQube's custom keyword
            errors.append({"instancePath": f"/{name}",
                           "schemaPath": f"#/properties/{name}/shouldnotnull",
                           "keyword": "shouldnotnull", "params": {"keyword": "shouldnotnull"},
                           "message": 'must pass "shouldnotnull" keyword validation'})
    return errors


@requires("spec")
async def schedule(request: web.Request) -> web.Response:
    errors = schedule_errors(await read_json(request))
    if errors:
        return web.json_response({"message": errors}, status=400)
    if request.app[appkeys.SETTINGS].processing.enabled:
        message = ("no schedule is needed here: processing.enabled is on, so every upload is "
                   "processed into the dashboard tables as soon as it lands (cQube schedules "
                   "NiFi processor groups for that; this server runs no NiFi)")
    else:
        message = ("scheduling NiFi processor groups is not supported: this server runs no "
                   "NiFi. In cQube, schedules live in its spec service (spec-ms, "
                   "POST /spec/schedule) and NiFi; or set processing.enabled = true here, and "
                   "every upload is processed as soon as it lands, without a schedule")
    status = status_of("not_supported")
    resp = web.json_response(nest_body(status, message, code="not_supported"), status=status)
    resp.headers["X-Request-ID"] = request_id_of(request)
    return resp


def setup(app: web.Application) -> None:
    """Before ``/api/spec/{kind}``, which would take the path otherwise (``web/cqube``)."""
    app.router.add_post("/api/spec/schedule", schedule)
