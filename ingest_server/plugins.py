"""Loading plugins: built-ins, the ``ingest_server`` entry point group, and every ``plugins/*.py``.

Modelled on pluggy's eggsample: a plain function builds a fresh manager each time; nothing is
registered at import time. A plugin that fails to import stops start-up naming its file.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pluggy

from . import __version__, hookspecs
from .errors import IngestError
from .plugincheck import module_problems
from .programs import ProgramType

log = logging.getLogger("ingest_server.plugins")

BUILTINS = ("ingest_server.builtin.program_types",)
ENTRY_POINT_GROUP = "ingest_server"


class PluginError(Exception):
    """A plugin could not be loaded or conflicts with another; start-up stops with this message."""


def get_plugin_manager(plugins_dir: str | Path | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ingest_server")
    pm.add_hookspecs(hookspecs)
    for name in BUILTINS:
        pm.register(importlib.import_module(name), name=name)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as e:  # any error in a third-party package must name it, then stop start-up
        raise PluginError(f"an '{ENTRY_POINT_GROUP}' entry point failed to load: {e!r}") from e
    if plugins_dir is not None:
        for path in sorted(Path(plugins_dir).glob("*.py")):
            if path.name.startswith("_"):
                continue
            module = _load_file(path)
            problems = module_problems(module, path)
            if problems:
                raise PluginError("\n".join(problems))
            pm.register(module, name=f"plugins/{path.name}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:  # an entry-point plugin: still one message
        raise PluginError(f"plugin {e.plugin!r}: {' '.join(str(e).split())}") from None
    return pm


def _load_file(path: Path) -> Any:
    module_name = f"ingest_server_plugins.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a broken plugin stops start-up with its path and the error
        sys.modules.pop(module_name, None)
        last = traceback.extract_tb(e.__traceback__)[-1]
        raise PluginError(f"plugin {path} failed to import: {e.__class__.__name__}: {e} "
                          f"(line {last.lineno})") from e
    return module


@dataclass
class Registry:
    """What the loaded plugins provide, gathered once at start-up."""

    pm: pluggy.PluginManager
    plugins_dir: str | None = None
    program_types: dict[str, ProgramType] = field(default_factory=dict)
    program_type_owners: dict[str, str] = field(default_factory=dict)

    def program_type(self, name: str) -> ProgramType | None:
        return self.program_types.get(name)

    def describe(self) -> list[dict[str, Any]]:
        """Every loaded plugin: name, where it came from, version and the hooks it implements."""
        dists = dict(self.pm.list_plugin_distinfo())
        out = []
        for name, plugin in self.pm.list_name_plugin():
            dist = dists.get(plugin)
            if name in BUILTINS:
                source, version = "builtin", __version__
            elif dist is not None:
                source, version = "entry_point", getattr(dist, "version", None)
            else:
                source, version = "file", getattr(plugin, "__version__", None)
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            out.append({"name": name, "source": source,
                        "version": None if version is None else str(version), "hooks": hooks,
                        "program_types": sorted(t for t, owner in
                                                self.program_type_owners.items() if owner == name)})
        return sorted(out, key=lambda p: (p["source"] != "builtin", p["name"]))


def build_registry(pm: pluggy.PluginManager, plugins_dir: str | None = None) -> Registry:
    reg = Registry(pm=pm, plugins_dir=plugins_dir)
    owners: dict[str, str] = {}
    for impl in pm.hook.register_program_types.get_hookimpls():
        for pt in impl.function() or []:
            if not isinstance(pt, ProgramType):
                raise PluginError(f"plugin {impl.plugin_name}: register_program_types must return "
                                  f"ProgramType objects, got {type(pt).__name__}")
            if pt.name in reg.program_types:
                raise PluginError(f"program type '{pt.name}' is registered twice: by "
                                  f"{owners[pt.name]} and by {impl.plugin_name}")
            reg.program_types[pt.name] = pt
            owners[pt.name] = impl.plugin_name
    reg.program_type_owners = owners
    return reg


@lru_cache(maxsize=4)
def load_registry(plugins_dir: str | None) -> Registry:
    """The registry for a plugins folder, built once per process (used by worker processes)."""
    return build_registry(get_plugin_manager(plugins_dir), plugins_dir)


def header_problems(pm: pluggy.PluginManager, **context: Any) -> list[tuple[str, str]]:
    """Every plugin's ``check_header`` result. A plugin that raises or answers something other
    than ``(code, message)`` pairs fails the upload with ``plugin_error`` naming it."""
    problems = []
    for impl in pm.hook.check_header.get_hookimpls():
        try:
            found = impl.function(**{name: context[name] for name in impl.argnames})
            for code, message in found or ():
                if not isinstance(code, str) or not code:
                    raise TypeError(f"an error without a code: {(code, message)!r}")
                problems.append((code, str(message)))
        except Exception as e:  # a plugin bug is the server's fault, not the file's
            log.error("plugin %s: check_header failed", impl.plugin_name, exc_info=e)
            raise IngestError(f"plugin {impl.plugin_name} failed checking the header: "
                              f"{e.__class__.__name__}: {e}", code="plugin_error", status=500,
                              plugin=impl.plugin_name) from None
    return problems
