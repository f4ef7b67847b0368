"""Starting processing: the grammar registry on the two databases, cQube's schemas created."""

from __future__ import annotations

import asyncpg

from ..config import Settings
from ..ingest.layout import layout_named
from ..stores.specs import SpecStore
from .registry import GrammarRegistry
from .service import ProcessingService
from .store import GrammarStore


async def start_processing(settings: Settings, *, service_pool: asyncpg.Pool,
                           processing_pool: asyncpg.Pool, specs: SpecStore) -> ProcessingService:
    registry = GrammarRegistry(store=GrammarStore(service_pool), specs=specs,
                               processing_pool=processing_pool)
    await registry.setup()
    keys_dir = settings.path(settings.server.state_dir) / "processing" / "keys"
    return ProcessingService(config=settings.processing, registry=registry, pool=processing_pool,
                             keys_dir=keys_dir,
                             quote=layout_named(settings.storage.layout).valid_quote)
