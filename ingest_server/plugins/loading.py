"""Loading plugins: built-ins, the ``ingest_server`` entry point group, and every ``plugins/*.py``;
and the one way the core calls a hook.

Modelled on pluggy's eggsample: a plain function builds a fresh manager each time; nothing is
registered at import time. A plugin that fails to import stops start-up naming its file.

Calling hooks: ``hook_calls`` lists a hook's implementations in the order pluggy calls them
(``tryfirst``/``trylast`` and registration order exactly as pluggy orders them), each bound once
to the arguments it names; ``call_each`` runs them with one error policy (an exception becomes a
``PluginHookError`` naming the plugin; the caller decides what it costs). A hook with wrappers is
called through pluggy itself (``pm.hook.<name>(**kwargs)``), so wrappers mean what pluggy's docs
say. Row hooks run millions of times: the list is compiled once per file, never per row.
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
from typing import Any, Callable, Iterator

import pluggy

from .. import __version__
from . import hookspecs
from ..errors import IngestError
from .check import module_problems
from .programs import ProgramType
from ..validation import Extensions, make_validator_class

log = logging.getLogger("ingest_server.plugins")

BUILTINS = ("ingest_server.plugins.builtin.program_types",)
ENTRY_POINT_GROUP = "ingest_server"


class PluginError(Exception):
    """A plugin could not be loaded or conflicts with another; start-up stops with this message."""


class PluginHookError(Exception):
    """A hook implementation raised: ``plugin`` names it, ``__cause__`` is what it raised."""

    def __init__(self, plugin: str, hook: str, error: Exception) -> None:
        super().__init__(f"plugin {plugin} failed in {hook}: {error.__class__.__name__}: {error}")
        self.plugin, self.hook, self.error = plugin, hook, error


@dataclass(frozen=True)
class HookCall:
    """One step of a hook call: ``call(*per_call)`` runs one implementation, or, for a hook with
    wrappers (``through_pluggy``), the whole pluggy call, returning pluggy's result."""

    plugin: str
    call: Callable[..., Any]
    through_pluggy: bool = False


def _has_wrappers(caller: pluggy.HookCaller) -> bool:
    return any(i.wrapper or i.hookwrapper for i in caller.get_hookimpls())


ROW_ARGS = ("row", "values")  # what row hooks get per row; the rest is bound once per file


def _bind(fn: Callable[..., Any], names: tuple[str, ...], static: dict[str, Any],
          per_call: tuple[str, ...]) -> Callable[..., Any]:
    """``fn`` with the per-file arguments it names bound now; the per-call ones (positional, in
    ``per_call``'s order) passed by name, only those it takes."""
    bound = {name: static[name] for name in names if name in static}
    taken = tuple(name for name in per_call if name in names)
    if per_call == ROW_ARGS:  # millions of calls: keywords spelled out, no dict built per row
        if taken == ROW_ARGS:
            return lambda row, values: fn(row=row, values=values, **bound)
        if taken == ("values",):
            return lambda row, values: fn(values=values, **bound)
        if taken == ("row",):
            return lambda row, values: fn(row=row, **bound)
    if not taken:
        return lambda *_: fn(**bound)
    positions = [per_call.index(name) for name in taken]
    return lambda *args: fn(**{n: args[i] for n, i in zip(taken, positions)}, **bound)


def hook_calls(caller: pluggy.HookCaller, static: dict[str, Any] | None = None,
               per_call: tuple[str, ...] = ()) -> list[HookCall]:
    """The implementations of a hook in the order pluggy calls them, each bound to ``static``.

    pluggy calls ``get_hookimpls()`` from the end: tryfirst implementations, then the others
    latest registered first, then trylast. With wrappers, one step calls through pluggy."""
    static = static or {}
    if _has_wrappers(caller):
        def through(*args: Any) -> Any:
            return caller(**static, **dict(zip(per_call, args)))
        return [HookCall(f"{caller.name} (with its wrappers)", through, through_pluggy=True)]
    return [HookCall(impl.plugin_name, _bind(impl.function, tuple(impl.argnames), static,
                                            per_call))
            for impl in reversed(caller.get_hookimpls())]


def call_each(caller: pluggy.HookCaller, *, calls: list[HookCall] | None = None,
              args: tuple[Any, ...] = (), **static: Any) -> Iterator[tuple[str, Any]]:
    """``(plugin, result)`` for each non-None result in pluggy's order (stop early for
    ``firstresult`` hooks: the first one wins). An implementation that raises ends the walk
    with ``PluginHookError`` naming it."""
    firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))
    for step in calls if calls is not None else hook_calls(caller, static):
        try:
            result = step.call(*args)
        except Exception as e:  # the policy: name the plugin, let the caller decide the cost
            raise PluginHookError(step.plugin, caller.name, e) from e
        if step.through_pluggy:
            for value in ([result] if firstresult else result):
                if value is not None:
                    yield step.plugin, value
        elif result is not None:
            yield step.plugin, result
            if firstresult:
                return


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

    def types_for(self, route: str) -> list[ProgramType]:
        """The program types a route takes (``ProgramType.route``), by name."""
        return sorted((t for t in self.program_types.values() if t.route == route),
                      key=lambda t: t.name)

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


# Hooks whose implementations chain or are told apart by plugin: a wrapper cannot take part.
NO_WRAPPERS = ("transform_row", "wants_rows", "register_program_types",
               "register_cerberus_extensions")


def _startup_results(pm: pluggy.PluginManager, name: str) -> Iterator[tuple[str, Any]]:
    try:
        yield from call_each(getattr(pm.hook, name))
    except PluginHookError as e:
        raise PluginError(str(e)) from e


def build_registry(pm: pluggy.PluginManager, plugins_dir: str | None = None) -> Registry:
    for name in NO_WRAPPERS:
        if _has_wrappers(getattr(pm.hook, name)):
            raise PluginError(f"hook '{name}' cannot be wrapped (its implementations are called "
                              "one by one): implement it as a plain hook")
    reg = Registry(pm=pm, plugins_dir=plugins_dir)
    owners: dict[str, str] = {}
    for plugin, types in _startup_results(pm, "register_program_types"):
        for pt in types:
            if not isinstance(pt, ProgramType):
                raise PluginError(f"plugin {plugin}: register_program_types must return "
                                  f"ProgramType objects, got {type(pt).__name__}")
            if pt.name in reg.program_types:
                raise PluginError(f"program type '{pt.name}' is registered twice: by "
                                  f"{owners[pt.name]} and by {plugin}")
            reg.program_types[pt.name] = pt
            owners[pt.name] = plugin
    reg.program_type_owners = owners
    return reg


@lru_cache(maxsize=4)
def load_registry(plugins_dir: str | None) -> Registry:
    """The registry for a plugins folder, built once per process (used by worker processes)."""
    return build_registry(get_plugin_manager(plugins_dir), plugins_dir)


@lru_cache(maxsize=8)
def plugin_extensions(plugins_dir: str | None) -> Extensions | None:
    """Cerberus extensions from every plugin's ``register_cerberus_extensions``, merged once."""
    pm = load_registry(plugins_dir).pm
    merged: dict[str, dict] = {"rules": {}, "types": {}, "coercers": {}}
    owners: dict[tuple[str, str], str] = {}
    for plugin, ext in _startup_results(pm, "register_cerberus_extensions"):
        if not isinstance(ext, Extensions):
            raise PluginError(f"plugin {plugin}: register_cerberus_extensions must "
                              f"return an Extensions, got {type(ext).__name__}")
        for kind, table in merged.items():
            for name, value in getattr(ext, kind).items():
                if (kind, name) in owners:
                    raise PluginError(f"Cerberus {kind[:-1]} '{name}' is registered twice: by "
                                      f"{owners[kind, name]} and by {plugin}")
                owners[kind, name] = plugin
                table[name] = value
    return Extensions(**merged) if owners else None


def check_extensions(plugins_dir: str | None) -> None:
    """Merge and check the plugins' Cerberus extensions now, so that a conflict or a bad name
    stops start-up (or ``--check``) like a plugin that fails to import, not the first upload."""
    try:
        make_validator_class(plugin_extensions(plugins_dir))
    except ValueError as e:
        raise PluginError(f"a plugin's Cerberus extension is invalid: {e}") from None


def check_plugins(plugins_dir: str | None) -> Registry:
    """Load every plugin and merge their Cerberus extensions, as start-up does (PluginError)."""
    registry = load_registry(plugins_dir)
    check_extensions(plugins_dir)
    return registry


def plugin_failed(e: PluginHookError, doing: str) -> IngestError:
    """A hook failure that no file can get past (the server's fault): ``plugin_error``, 500."""
    log.error("plugin %s: %s failed", e.plugin, e.hook, exc_info=e.error)
    return IngestError(f"plugin {e.plugin} failed {doing}: {e.error.__class__.__name__}: "
                       f"{e.error}", code="plugin_error", status=500, plugin=e.plugin)


def header_problems(pm: pluggy.PluginManager, **context: Any) -> list[tuple[str, str]]:
    """Every plugin's ``check_header`` result. A plugin that raises or answers something other
    than ``(code, message)`` pairs fails the upload with ``plugin_error`` naming it."""
    problems = []
    plugin = "?"
    try:
        for plugin, found in call_each(pm.hook.check_header, **context):
            for code, message in found:
                if not isinstance(code, str) or not code:
                    raise TypeError(f"an error without a code: {(code, message)!r}")
                problems.append((code, str(message)))
    except PluginHookError as e:  # a plugin bug is the server's fault, not the file's
        raise plugin_failed(e, "checking the header") from None
    except (TypeError, ValueError) as e:  # a malformed answer: the same, naming the plugin
        raise plugin_failed(PluginHookError(plugin, "check_header", e),
                            "checking the header") from None
    return problems
