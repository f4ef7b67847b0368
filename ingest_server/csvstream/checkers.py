"""The per-process cache of row checkers, keyed by ``ctx_key``.

A checker is whatever object has ``header``, ``output_header`` and a stateless ``check(row)``
returning ``(errors, out_row)`` (see ``RowChecker``): one checker serves every upload of the
process at once, in several threads, so it must keep nothing about a row between calls. Building one may be costly (compiling a schema), so
each process builds it once per ``ctx_key``. A ``CheckerRecipe`` travels with every job sent to a
worker process: a worker that has not seen the ``ctx_key`` yet builds it on first use, so a new
spec version or header needs no pool restart. Use a new ``ctx_key`` whenever the spec or header
changes (e.g. ``f"{spec_sha256}:{header_sha256}"``). A checker whose ``check`` never changes a
row in place may say so with ``rows_unaltered = True``: the worker then writes the valid rows of
a chunk as the bytes that arrived (the records holding a quote go through csv.writer).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

_MAX_CACHED = 64  # built checkers kept per process
_MAX_FACTORIES = 1024  # recipes are small; a long-lived worker still must not grow forever


class RowChecker(Protocol):
    header: list[str]
    output_header: list[str]

    def check(self, row: list[str]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
        """``(errors, out_row)``: ``out_row`` (``row`` itself when unchanged) is written when
        ``errors`` is empty."""


@dataclass(frozen=True)
class CheckerRecipe:
    """A picklable recipe: ``factory`` (a module-level function, which pickles as a reference to
    it) called with ``args`` and ``kwargs`` (which must be picklable too) builds the checker.
    The caller passes the function itself, so a reader can follow it."""

    factory: Callable[..., RowChecker]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> RowChecker:
        return self.factory(*self.args, **self.kwargs)

    def key(self) -> str:
        """A stable name for this recipe within a process (factory by name, then the args)."""
        f = self.factory
        return f"{f.__module__}:{f.__qualname__}{self.args!r}{self.kwargs!r}"


_factories: OrderedDict[str, Callable[[], RowChecker]] = OrderedDict()
_checkers: OrderedDict[str, RowChecker] = OrderedDict()


def register_checker_factory(ctx_key: str, factory: Callable[[], RowChecker]) -> None:
    """Make ``ctx_key`` known in this process; ``factory()`` runs on first ``get_checker``.

    Re-registering a key drops the checker built from the old factory.
    """
    if _factories.get(ctx_key) is not factory:
        _checkers.pop(ctx_key, None)
    _remember(ctx_key, factory)


def _remember(ctx_key: str, factory: Callable[[], RowChecker]) -> None:
    _factories[ctx_key] = factory
    _factories.move_to_end(ctx_key)
    while len(_factories) > _MAX_FACTORIES:
        old, _ = _factories.popitem(last=False)
        _checkers.pop(old, None)


def get_checker(ctx_key: str) -> RowChecker:
    """The checker for ``ctx_key``, built once per process (least recently used are dropped)."""
    checker = _checkers.get(ctx_key)
    if checker is not None:
        _checkers.move_to_end(ctx_key)
        return checker
    try:
        factory = _factories[ctx_key]
    except KeyError:
        raise LookupError(f"no checker registered for {ctx_key!r}") from None
    checker = factory()
    _checkers[ctx_key] = checker
    while len(_checkers) > _MAX_CACHED:
        _checkers.popitem(last=False)
    return checker


def ensure_checker(ctx_key: str, spec: Callable[[], RowChecker]) -> None:
    """Register ``spec`` for ``ctx_key`` unless this process already knows the key."""
    if ctx_key not in _factories:
        _remember(ctx_key, spec)
