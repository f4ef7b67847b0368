"""ingest-server: a streaming, validating ingestion service (cQube-compatible API)."""

from typing import Any

import pluggy

hookimpl = pluggy.HookimplMarker("ingest_server")

__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    # Read on first use: a validation worker imports this package but never needs it.
    if name == "__version__":
        from .version import __version__  # noqa: PLC0415

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
