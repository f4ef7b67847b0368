"""Resumable uploads: the tus 1.0 protocol (core, creation, termination, checksum, expiration).

``store`` keeps one row per upload URL in PostgreSQL, ``staging`` keeps the bytes in shared
storage as they arrive, ``service`` ties them together and hands a complete upload to the
upload path (:class:`ingest_server.ingest.service.UploadService`).
"""
