"""``GET /api/plugins``: what is loaded, with versions, hooks and what each plugin provides."""

from aiohttp import web

from ...plugins.loading import check_extensions, plugin_extensions
from .. import appkeys
from ..middleware import requires


@requires("read")
async def list_plugins(request: web.Request) -> web.Response:
    registry = request.app[appkeys.REGISTRY]
    ext = plugin_extensions(registry.plugins_dir)
    return web.json_response({
        "plugins": registry.describe(),
        "program_types": [{"name": pt.name, "route": pt.route, "spec_kind": pt.spec_kind,
                           "file_kinds": list(pt.file_kinds), "description": pt.description,
                           "plugin": registry.program_type_owners.get(pt.name)}
                          for pt in sorted(registry.program_types.values(),
                                           key=lambda pt: pt.name)],
        "cerberus_extensions": {kind: sorted(getattr(ext, kind)) if ext else []
                                for kind in ("rules", "types", "coercers")},
    })


def setup(app: web.Application) -> None:
    check_extensions(app[appkeys.REGISTRY].plugins_dir)  # a bad extension stops the app here
    app.router.add_get("/api/plugins", list_plugins)
