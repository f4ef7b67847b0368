"""Upload-finished webhook: POST a JSON summary of every finished upload to a URL.

Configured by environment variables (plugins have no config section); without
``INGEST_WEBHOOK_URL`` the plugin does nothing.

* ``INGEST_WEBHOOK_URL``: where to POST, e.g. ``https://chat.example.org/hooks/ingest``.
* ``INGEST_WEBHOOK_TIMEOUT_S``: seconds allowed per attempt (default 5).
* ``INGEST_WEBHOOK_RETRIES``: further attempts after a failure (default 2), 0.5 s, 1 s, ... apart.

The body is ``{"event": "upload_finished", "upload": {...}}`` with the upload as the API shows
it, minus the row error sample. Only a 2xx answer is a success; connection errors, timeouts,
5xx, 408 and 429 are retried, then logged; another 4xx is logged at once. The upload's outcome
never depends on the webhook, but its answer waits for it: keep the timeout and retries small.
"""

import asyncio
import logging
import os

from ingest_server import hookimpl

__version__ = "1.0.0"
log = logging.getLogger("ingest_server.plugins.webhook_notifier")
SUMMARY_FIELDS = ("upload_id", "status", "message", "route", "filename", "ingestion_type",
                  "ingestion_name", "program_name", "spec_version", "dry_run", "bytes", "sha256",
                  "total_rows", "valid_rows", "invalid_rows", "objects", "error", "started_at",
                  "finished_at")


@hookimpl
def upload_finished(upload):
    url = os.environ.get("INGEST_WEBHOOK_URL", "").strip()
    if not url:
        return None
    timeout = float(os.environ.get("INGEST_WEBHOOK_TIMEOUT_S", "5"))
    retries = int(os.environ.get("INGEST_WEBHOOK_RETRIES", "2"))
    summary = {k: upload.get(k) for k in SUMMARY_FIELDS}
    return post(url, {"event": "upload_finished", "upload": summary}, timeout, retries)


async def post(url, body, timeout, retries):
    """POST ``body`` as JSON; True when the server took it, False after the last failure."""
    # Imported here: every validation worker process loads all plugins, and needs no HTTP client.
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
            try:
                async with session.post(url, json=body) as resp:
                    if 200 <= resp.status < 300:
                        return True
                    problem = f"HTTP {resp.status}"
                    final = resp.status < 500 and resp.status not in (408, 429)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                problem, final = f"{e.__class__.__name__}: {e}", False
            log.warning("webhook for upload %s, attempt %d of %d: %s", body["upload"]["upload_id"],
                        attempt + 1, retries + 1, problem)
            if final:  # the receiver refused this body: sending it again will not help
                break
    log.error("webhook for upload %s not delivered to %s", body["upload"]["upload_id"], url)
    return False
