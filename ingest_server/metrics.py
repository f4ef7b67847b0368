"""Prometheus metrics: what uploads did, how long they took, and what failed underneath.

Domain code updates these through the small functions below and never sees HTTP; the view in
``web/views/metrics.py`` only renders :data:`REGISTRY`.

Labels are bounded on purpose: ``type`` is a registered program type, ``program`` is the spec name
an upload was validated against (a state CSV's ``ingestion_name``, which must be a registered spec
by the time an upload starts; ``national`` for ZIPs, whose members are counted in rows), and
``outcome`` is an upload status. Client-supplied text (file names, ``program_name`` folders) is
never a label, so a client cannot grow the series without limit.

Across processes: with ``server.workers = N`` the parent process gives every worker one
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode), so ``/metrics`` answers
the sum over all N workers whichever of them the scrape reaches (the in-flight gauge sums the
live processes). The ``process_*`` families are then left out: they would describe only the
process that answered. Replicas (one process per pod or container) are scraped per pod.
"""

from __future__ import annotations

import os

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest, multiprocess)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
REGISTRY = CollectorRegistry(auto_describe=True)
if not MULTIPROCESS_DIR:
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)

# Seconds: uploads range from a few ms (small CSV) to many minutes (GiB ZIPs).
_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                     1800, 3600)

UPLOADS = Counter("ingest_uploads", "Uploads by outcome (uploaded, rejected, failed)",
                  ["route", "type", "program", "outcome"], registry=REGISTRY)
ROWS = Counter("ingest_rows", "CSV data rows checked, by verdict (valid or invalid)",
               ["type", "program", "verdict"], registry=REGISTRY)
BYTES = Counter("ingest_bytes", "Upload bytes received (the file as sent: CSV or ZIP)",
                ["type", "program"], registry=REGISTRY)
UPLOAD_SECONDS = Histogram("ingest_upload_duration_seconds",
                           "From the upload's first byte to its outcome being recorded",
                           ["type", "outcome"], buckets=_DURATION_BUCKETS, registry=REGISTRY)
VALIDATION_SECONDS = Histogram(
    "ingest_validation_duration_seconds",
    "One CSV's streaming pass: header, every row checked and staged (a national ZIP has one per "
    "member). The pass runs while the body arrives, so it includes waiting on the client.",
    ["type"], buckets=_DURATION_BUCKETS, registry=REGISTRY)
IN_FLIGHT = Gauge("ingest_uploads_in_flight", "Uploads being received or checked right now",
                  ["type"], registry=REGISTRY, multiprocess_mode="livesum")
STORAGE_ERRORS = Counter("ingest_storage_errors", "Requests that failed on object storage",
                         ["code"], registry=REGISTRY)
DB_ERRORS = Counter("ingest_db_errors", "Requests that failed because the database was unavailable",
                    ["code"], registry=REGISTRY)
HTTP_REQUESTS = Counter("ingest_http_requests", "HTTP requests answered",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_SECONDS = Histogram("ingest_http_request_duration_seconds", "HTTP request handling time",
                         ["method", "route"], buckets=_DURATION_BUCKETS, registry=REGISTRY)


def upload_finished(*, route: str, program_type: str, program: str, outcome: str, nbytes: int,
                    valid_rows: int, invalid_rows: int, duration_s: float) -> None:
    """Count one upload's outcome, rows, bytes and duration."""
    UPLOADS.labels(route, program_type, program, outcome).inc()
    BYTES.labels(program_type, program).inc(nbytes)
    if valid_rows:
        ROWS.labels(program_type, program, "valid").inc(valid_rows)
    if invalid_rows:
        ROWS.labels(program_type, program, "invalid").inc(invalid_rows)
    UPLOAD_SECONDS.labels(program_type, outcome).observe(duration_s)


def validation_finished(program_type: str, duration_s: float) -> None:
    VALIDATION_SECONDS.labels(program_type).observe(duration_s)


def storage_error(code: str) -> None:
    STORAGE_ERRORS.labels(code).inc()


def db_error(code: str) -> None:
    DB_ERRORS.labels(code).inc()


def http_request(method: str, route: str, status: int, duration_s: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(duration_s)


def render() -> bytes:
    """The registry in the Prometheus text exposition format (summed over workers, if any)."""
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
