"""cQube's processing inside ingest-server: grammars, master data, datasets (DESIGN.md §12)."""
