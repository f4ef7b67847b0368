"""Prometheus metrics: public text format, and real uploads move the counters."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ingest_helpers import register, upload
from ingest_server.errors import InsufficientStorage, StorageError
from ingest_server.web import appkeys
from ingest_server.web.middleware import access_middleware, errors_middleware

GOOD = b"date,school_id,teachers_present,remarks,score\n" \
       b"2024-01-01,S1,10,ok,1.5\n2024-01-01,S2,abc,bad number,\n2024-01-02,S3,4,,\n"


async def scrape(client) -> dict[tuple[str, frozenset], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_public_and_list_every_family(client):
    samples = await scrape(client)  # no token
    names = {name for name, _ in samples}
    assert "process_resident_memory_bytes" in names
    text = await (await client.get("/metrics")).text()
    for family in ("ingest_uploads_total", "ingest_rows_total", "ingest_bytes_total",
                   "ingest_upload_duration_seconds", "ingest_validation_duration_seconds",
                   "ingest_uploads_in_flight", "ingest_storage_errors_total",
                   "ingest_db_errors_total", "ingest_http_requests_total"):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family


async def test_an_upload_moves_the_counters(client, auth_headers):
    await register(client, auth_headers)
    before = await scrape(client)
    status, body = await upload(client, auth_headers, GOOD)
    assert status == 200 and body["status"] == "uploaded"
    status, rejected = await upload(client, auth_headers, GOOD, params={"max_error_rate": "0.1"})
    assert rejected["status"] == "rejected"
    status, _ = await upload(client, auth_headers, b"date\n2024-01-01\n")  # missing_column
    assert status == 400
    after = await scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    event = {"type": "event", "program": "teacherspresent"}
    route = {"route": "new_programs", **event}
    assert delta("ingest_uploads_total", outcome="uploaded", **route) == 1
    assert delta("ingest_uploads_total", outcome="rejected", **route) == 2
    # Rows count for concluded uploads (the rejected-by-rate one too), not the refused file.
    assert delta("ingest_rows_total", verdict="valid", **event) == 4
    assert delta("ingest_rows_total", verdict="invalid", **event) == 2
    assert delta("ingest_bytes_total", **event) == 2 * len(GOOD) + len(b"date\n2024-01-01\n")
    assert delta("ingest_upload_duration_seconds_count", type="event", outcome="uploaded") == 1
    assert delta("ingest_upload_duration_seconds_sum", type="event", outcome="uploaded") > 0
    assert delta("ingest_validation_duration_seconds_count", type="event") == 2
    assert value(after, "ingest_uploads_in_flight", type="event") == 0
    assert delta("ingest_http_requests_total", method="POST",
                 route="/api/ingestion/new_programs", status="200") == 2
    assert delta("ingest_http_requests_total", method="POST",
                 route="/api/ingestion/new_programs", status="400") == 1


async def test_database_outage_is_counted(client, auth_headers):
    before = value(await scrape(client), "ingest_db_errors_total", code="db_unavailable")
    await client.app[appkeys.POOL].close()
    resp = await client.get("/api/specs", headers=auth_headers)
    assert resp.status == 503
    after = value(await scrape(client), "ingest_db_errors_total", code="db_unavailable")
    assert after == before + 1


async def test_storage_errors_are_counted_by_the_error_middleware(aiohttp_client):
    """The middleware counts any StorageError answer, whichever backend raised it."""
    async def fail(request):
        raise {"full": InsufficientStorage("disk full"),
               "down": StorageError("S3 unreachable", code="storage_unavailable")}[
            request.match_info["how"]]

    from ingest_server import metrics

    app = web.Application(middlewares=[access_middleware, errors_middleware])
    app.router.add_get("/fail/{how}", fail)
    client = await aiohttp_client(app)

    def count(code):
        return metrics.REGISTRY.get_sample_value("ingest_storage_errors_total",
                                                 {"code": code}) or 0.0

    down, full = count("storage_unavailable"), count("insufficient_storage")
    assert (await client.get("/fail/down")).status == 502
    assert (await client.get("/fail/full")).status == 507
    assert (count("storage_unavailable"), count("insufficient_storage")) == (down + 1, full + 1)
