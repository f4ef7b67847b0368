"""``ingest upload --resumable``: the tus protocol from the command line.

The upload URL is remembered in ``$XDG_CACHE_HOME/ingest/resumable.json`` (``~/.cache`` by
default) under a key made of the file's absolute path, size and mtime and the target (server,
route, fields): running the same command again after Ctrl-C or a dropped connection asks the
server where it stopped (HEAD) and sends only the rest. An entry goes once its upload is done,
or when the server no longer knows it (expired, terminated); a changed file never matches one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from .client import IngestClient
from .failures import ApiError, CliError

CREATION_PATH = "/api/ingestion/resumable"
THRESHOLD_BYTES = 64 * 1024 * 1024  # resumable by default from this size on
CHUNK_BYTES = 8 * 1024 * 1024  # one PATCH; a cut costs at most this much again
STATE_TTL_S = 2 * 86400  # the server forgets unfinished uploads after a day (by default)
LOCKED_RETRIES = 30  # seconds the server may take to notice an interrupted PATCH (lease: 30 s)
TUS = {"Tus-Resumable": "1.0.0"}


def state_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ingest" / "resumable.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    now = time.time()
    return {k: v for k, v in data.items()
            if isinstance(v, dict) and now - v.get("created", 0) < STATE_TTL_S}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def state_key(path: Path, base_url: str, route: str, fields: Mapping[str, str]) -> str:
    st = path.stat()
    target = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, base_url, route,
                         sorted(fields.items())])
    return hashlib.sha256(target.encode()).hexdigest()


def metadata(fields: Mapping[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


class ResumableUpload:
    """One file sent with tus; :meth:`run` returns the upload's record (the one-shot answer)."""

    def __init__(self, client: IngestClient, path: Path, *, route: str,
                 fields: Mapping[str, str], on_chunk: Callable[[int], None]) -> None:
        self.client, self.path, self.on_chunk = client, path, on_chunk
        self.size = path.stat().st_size
        self.fields = dict(fields, filename=path.name)
        if route == "national_programs":
            self.fields["ingestion_type"] = "national"
        self.state_path = state_file()
        self.key = state_key(path, client.config.url, route, self.fields)

    def run(self) -> dict[str, Any]:
        url, offset = self._resume()
        if url is None:
            url, offset = self._create(), 0
        self.on_chunk(offset)  # the bar starts where the server stands
        headers: Mapping[str, str] = {}
        with open(self.path, "rb") as f:
            while True:
                f.seek(offset)
                chunk = f.read(CHUNK_BYTES)
                try:
                    headers = self._patch_when_free(url, offset, chunk)
                except ApiError as e:
                    if e.details.get("upload_id"):  # complete, and the file was rejected
                        self._forget()
                    if e.code == "offset_mismatch":  # an answer was lost: go on from the server's
                        offset = int(e.details["upload_offset"])
                        continue
                    raise
                offset += len(chunk)
                self.on_chunk(len(chunk))
                if offset >= self.size:
                    break
        return self._finished(headers)

    def _patch_when_free(self, url: str, offset: int, chunk: bytes) -> Mapping[str, str]:
        """A PATCH; while the server still holds the upload for an earlier, interrupted one
        (423, until it has noticed the dropped connection), wait a little and try again."""
        for attempt in range(LOCKED_RETRIES):
            try:
                return self._patch(url, offset, chunk)
            except ApiError as e:
                if e.status != 423 or attempt == LOCKED_RETRIES - 1:
                    raise
                time.sleep(1.0)
        raise AssertionError("unreachable")

    # -- steps ---------------------------------------------------------------------------------

    def _resume(self) -> tuple[str | None, int]:
        entry = _load(self.state_path).get(self.key)
        if entry is None:
            return None, 0
        try:
            resp = self.client._send("HEAD", entry["url"], authed=True, headers=TUS)
        except ApiError as e:
            if e.status in (404, 410):  # expired or terminated: start again
                self._forget()
                return None, 0
            raise
        if "Upload-Id" in resp.headers:  # done earlier; only its answer was lost
            raise _AlreadyDone(resp.headers["Upload-Id"])
        return entry["url"], int(resp.headers["Upload-Offset"])

    def _create(self) -> str:
        resp = self.client._send("POST", CREATION_PATH, authed=True, headers=dict(
            TUS, **{"Upload-Length": str(self.size), "Upload-Metadata": metadata(self.fields)}))
        url = resp.headers.get("Location")
        if not url:
            raise CliError("the server did not give an upload URL (Location)")
        data = _load(self.state_path)
        data[self.key] = {"url": url, "created": time.time(), "file": str(self.path)}
        _save(self.state_path, data)
        return url

    def _patch(self, url: str, offset: int, chunk: bytes) -> Mapping[str, str]:
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        resp = self.client._send("PATCH", url, authed=True, content=chunk, headers=dict(
            TUS, **{"Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
                    "Content-Type": "application/offset+octet-stream"}))
        return resp.headers

    def _finished(self, headers: Mapping[str, str]) -> dict[str, Any]:
        upload_id = headers.get("Upload-Id")
        if not upload_id:
            raise CliError("the server took every byte but named no upload (Upload-Id)")
        self._forget()
        return self.client.get_upload(upload_id)

    def _forget(self) -> None:
        data = _load(self.state_path)
        if data.pop(self.key, None) is not None:
            _save(self.state_path, data)


class _AlreadyDone(Exception):
    def __init__(self, upload_id: str) -> None:
        super().__init__(upload_id)
        self.upload_id = upload_id


def upload_resumable(client: IngestClient, path: Path, *, route: str, fields: Mapping[str, str],
                     on_chunk: Callable[[int], None]) -> dict[str, Any]:
    job = ResumableUpload(client, path, route=route, fields=fields, on_chunk=on_chunk)
    try:
        return job.run()
    except _AlreadyDone as done:
        job._forget()
        return client.get_upload(done.upload_id)
