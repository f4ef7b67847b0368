"""A plugin's hook implementations checked against ``plugins/hookspecs.py``, with one line per mistake.

pluggy reports a misspelled hook or argument as a multi-line ``PluginValidationError`` raised
deep in start-up; a plugin author needs the file, the hook and the fix instead.
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any

from . import hookspecs

MARKER = "ingest_server_impl"  # the attribute pluggy's HookimplMarker("ingest_server") sets
SPECS = {name: tuple(inspect.signature(fn).parameters)
         for name, fn in vars(hookspecs).items()
         if callable(fn) and hasattr(fn, "ingest_server_spec")}


def hook_problem(source: str, attr: str, function: Any) -> str | None:
    """What is wrong with one ``@hookimpl`` function, as one line; None when it is right."""
    opts = getattr(function, MARKER, None)
    if opts is None:
        return None
    name = (opts or {}).get("specname") or attr
    if name not in SPECS:
        close = difflib.get_close_matches(name, SPECS, n=1)
        fix = f"did you mean '{close[0]}'?" if close else \
            f"the hooks are: {', '.join(sorted(SPECS))}"
        return (f"plugin {source}: '{name}' is not a hook of ingest-server ({fix} "
                "see ingest_server/plugins/hookspecs.py)")
    try:
        params = [p for p in inspect.signature(function).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        return None
    unknown = [p.name for p in params if p.name not in SPECS[name] and p.default is p.empty]
    if not unknown:
        return None
    hints = []
    for arg in unknown:
        close = difflib.get_close_matches(arg, SPECS[name], n=1)
        hints.append(f"'{arg}' (did you mean '{close[0]}'?)" if close else f"'{arg}'")
    return (f"plugin {source}: hook '{name}' has no argument {', '.join(hints)}; "
            f"it receives: {', '.join(SPECS[name])} (take any of them, by name)")


def module_problems(module: Any, path: Path | str) -> list[str]:
    """Every mistake in a plugin module's hook implementations."""
    found = (hook_problem(str(path), attr, value) for attr, value in vars(module).items())
    return [p for p in found if p]
