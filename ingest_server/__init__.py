"""ingest-server: a streaming, validating ingestion service (cQube-compatible API)."""

import pluggy

from .version import __version__

hookimpl = pluggy.HookimplMarker("ingest_server")

__all__ = ["hookimpl", "__version__"]
