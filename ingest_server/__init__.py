"""ingest-server: a streaming, validating ingestion service (cQube-compatible API)."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("ingest_server")

__all__ = ["hookimpl", "__version__"]
