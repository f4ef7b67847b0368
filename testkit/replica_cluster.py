"""Three ``ingest-server`` processes on one PostgreSQL and one SeaweedFS, behind a real nginx.

Each replica runs in a UTS namespace of its own (``unshare --uts``) with its own host name, as
replicas on separate machines would: a replica then cannot tell whether another one's process is
alive, and only a stale heartbeat lets it clean up after a dead one. Used by tests/test_replicas.py
(the CI version) and bench/bench_replicas.py (the longer one).
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import aiohttp

from testkit.accounts import TEST_CLIENT, basic
from ingest_server.auth import hash_secret
from testkit.nginx_lb import Nginx
from testkit.server_process import ServerProcess, free_port, write_config

COLUMNS = ["date", "school_id", "teachers_present", "remarks"]
SPEC = {"program": "teacherspresent", "input": {"type": "object", "properties": {
    "date": {"type": "string", "shouldnotnull": True},
    "school_id": {"type": "string", "shouldnotnull": True},
    "teachers_present": {"type": "integer", "shouldnotnull": True},
    "remarks": {"type": "string"}}, "required": ["date", "school_id", "teachers_present"]}}
FIELDS = {"ingestion_type": "event", "ingestion_name": "teacherspresent",
          "program_name": "replicas"}
STALE_UPLOAD_S = 6


class Replica(ServerProcess):
    """A server process with a host name of its own."""

    def __init__(self, name: str, config: Path, port: int, log_path: Path) -> None:
        super().__init__(config, port, log_path)
        self.name = name

    def command(self) -> list[str]:
        command = super().command()
        if shutil.which("unshare"):
            command = ["unshare", "--uts", "sh", "-c", f'hostname {self.name} && exec "$@"',
                       "sh", *command]
        return command

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        self.wait_for("/readyz", timeout_s)

    def start(self, timeout_s: float = 60.0) -> None:
        self.spawn()
        self.wait_ready(timeout_s)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.terminate()

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout_s)
        self.process = None
        return code


@dataclass
class Cluster:
    root: Path
    dsn: str
    storage: dict
    replicas: list[Replica] = field(default_factory=list)
    nginx: Nginx | None = None

    def start(self, count: int = 3, *, grace_s: float = 30.0, code: Path | None = None,
              sections: dict[str, dict] | None = None,
              env: dict[str, dict[str, str]] | None = None) -> None:
        """``count`` replicas behind nginx; ``code``: an earlier release's (old_release.py);
        ``sections``: more config sections for all; ``env``: variables per replica name."""
        for n in range(count):
            name = f"replica-{n}"
            (self.root / name / "plugins").mkdir(parents=True, exist_ok=True)
            config = write_config(self.root / name / "config.toml", {**(sections or {}),
                "server": {"host": "127.0.0.1", "plugins_dir": str(self.root / name / "plugins"),
                           "state_dir": str(self.root / name / "state"),
                           "shutdown_timeout_s": grace_s, "trusted_proxies": ["127.0.0.1"]},
                "database": {"dsn": self.dsn, "pool_max": 4},
                "storage": self.storage,
                "auth": {"max_failed_attempts": 5, "failed_attempts_window_s": 300,
                         "clients": [{"id": TEST_CLIENT[0],
                                      "secret_sha256": hash_secret(TEST_CLIENT[1]),
                                      "scopes": ["ingest", "spec", "read"]}]},
                "ingest": {"workers": 1, "stale_upload_s": STALE_UPLOAD_S},
            })
            self.replicas.append(Replica(name, config, free_port(), self.root / f"{name}.log"))
            self.replicas[-1].code = code
            self.replicas[-1].env = (env or {}).get(name, {})
        for replica in self.replicas:  # at once: no jwt_secret, they race for the shared key
            replica.spawn()
        for replica in self.replicas:
            replica.wait_ready()
        self.nginx = Nginx(self.root / "nginx", [f"127.0.0.1:{r.port}" for r in self.replicas])
        self.nginx.start()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for replica in self.replicas:
            replica.kill()

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.url


async def token(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(base + "/api/ingestion/generatejwt",
                           headers=basic(*TEST_CLIENT, json=True)) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


@dataclass
class CsvCase:
    """One generated CSV: every row unique to it, some invalid, and what must land."""

    tag: str
    rows: int
    bad_every: int = 0
    wide: int = 0  # extra characters per row, for megabytes without millions of rows
    body: bytes = b""
    valid: list[list[str]] = field(default_factory=list)
    invalid: int = 0

    def __post_init__(self) -> None:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(self.rows):
            bad = self.bad_every and i % self.bad_every == self.bad_every - 1
            row = [f"2024-02-{1 + i % 28:02d}", f"{self.tag}-{i}",
                   "many" if bad else str(i % 97),
                   (f"r,{i}" if i % 5 == 0 else "") + "w" * self.wide]
            writer.writerow(row)
            if bad:
                self.invalid += 1
            else:
                self.valid.append(row)
        self.body = out.getvalue().encode()


def new_case(rows: int, bad_every: int = 0, wide: int = 0) -> CsvCase:
    return CsvCase(tag=uuid.uuid4().hex[:10], rows=rows, bad_every=bad_every, wide=wide)


async def multipart(case: CsvCase, boundary: str, *, pieces: int = 1,
                    pause_s: float = 0.0) -> AsyncIterator[bytes]:
    """The upload form, the file sent in ``pieces`` with ``pause_s`` between (a slow client)."""
    for k, v in FIELDS.items():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n').encode()
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
           f'filename="{case.tag}.csv"\r\nContent-Type: text/csv\r\n\r\n').encode()
    step = max(1, len(case.body) // pieces)
    for start in range(0, len(case.body), step):
        yield case.body[start:start + step]
        if pause_s:
            await asyncio.sleep(pause_s)  # pacing the sender: this is the slow client
    yield f"\r\n--{boundary}--\r\n".encode()


async def send(session: aiohttp.ClientSession, base: str, tok: str, case: CsvCase, *,
               key: str | None = None, pieces: int = 1, pause_s: float = 0.0,
               ) -> tuple[int, dict]:
    boundary = "replica" + uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {tok}",
               "Content-Type": f"multipart/form-data; boundary={boundary}"}
    if key:
        headers["Idempotency-Key"] = key
    async with session.post(base + "/api/ingestion/new_programs",
                            data=multipart(case, boundary, pieces=pieces, pause_s=pause_s),
                            headers=headers) as r:
        try:
            return r.status, await r.json(content_type=None)
        except ValueError:
            return r.status, {"text": await r.text()}


async def landed_rows(storage, key: str) -> list[list[str]]:
    data = b"".join([chunk async for chunk in storage.read(key)])
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


async def check_landed(storage, case: CsvCase, body: dict) -> None:
    """Every written row equals what the input should give, in order; errors counted."""
    assert body["status"] == "uploaded", body
    assert (body["valid_rows"], body["invalid_rows"]) == (len(case.valid), case.invalid), body
    rows = await landed_rows(storage, body["objects"]["valid"])
    assert rows[0] == COLUMNS
    assert rows[1:] == case.valid
    if case.invalid:
        errors = await landed_rows(storage, body["objects"]["errors"])
        assert [r[1] for r in errors[1:]] == [f"{case.tag}-{i}" for i in range(case.rows)
                                             if case.bad_every and i % case.bad_every ==
                                             case.bad_every - 1]
