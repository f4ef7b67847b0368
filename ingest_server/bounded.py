"""Bounded copies of error details: what is answered and stored about bad input stays small.

Error details quote the client's input (header names, cell values, column lists). Unbounded,
a 3 MB header name made a 6 MB answer and a 3 MB stored record, and 20 cells of 1 MB went into
``errors_sample``: six listings took the server from 339 MB to 1.2 GB. Values are cut here,
saying how much was left out; the exact data stays in the error file.
"""

from __future__ import annotations

from typing import Any

MAX_CHARS = 1000       # of one string (a value, a name, a message)
MAX_ITEMS = 100        # of one list or object
MAX_DEPTH = 8


def clip(text: str, max_chars: int = MAX_CHARS) -> str:
    """``text``, cut to ``max_chars`` with a note of the full length when longer."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… ({len(text):,} characters)"


def bounded(value: Any, *, max_chars: int = MAX_CHARS, max_items: int = MAX_ITEMS,
            depth: int = MAX_DEPTH) -> Any:
    """A JSON-able copy of ``value`` with strings, lists and objects cut to size."""
    if isinstance(value, str):
        return clip(value, max_chars)
    if depth <= 0 and isinstance(value, (dict, list, tuple)):
        return "…"
    kw = {"max_chars": max_chars, "max_items": max_items, "depth": depth - 1}
    if isinstance(value, dict):
        out = {clip(str(k), max_chars): bounded(v, **kw)
               for k, v in list(value.items())[:max_items]}
        if len(value) > max_items:
            out["…"] = f"{len(value) - max_items:,} more"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [bounded(v, **kw) for v in value[:max_items]]
        if len(value) > max_items:
            out_list.append(f"… {len(value) - max_items:,} more")
        return out_list
    return value
