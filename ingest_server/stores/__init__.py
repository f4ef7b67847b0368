"""The stores: every module that speaks SQL to the service's PostgreSQL (the only importers of
asyncpg outside ``processing/``).

``db`` is the pool, the embedded server and the migrations (``ingest_server/migrations/*.sql``);
the others each own their tables: ``uploads`` (the upload records), ``specs`` (versioned specs),
``object_owners`` (which upload owns an object key), ``resumable`` (tus uploads),
``login_failures`` (failed-login counts), ``signing_key`` (the shared JWT key) and ``rawdata``
(the emission files of today).

The processing of cQube data (``ingest_server/processing/``) keeps its own store modules there:
it writes a separate database (``processing.dsn``) with its own schema.
"""
