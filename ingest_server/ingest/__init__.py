"""Ingestion: upload bytes → rows → checks → objects in storage, tracked in the uploads table."""
