"""Raw uploads over a socket and direct reads of the uploads table, for the fault and shutdown
tests (the server as a real process)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from conftest import TEST_CLIENT, basic


HEADER = b"date,school_id,teachers_present,remarks\n"
ROW = b"2024-01-01,S1,4," + b"r" * 200 + b"\n"  # wide rows: megabytes without millions of rows
FIELDS = {"ingestion_type": "event", "ingestion_name": "teacherspresent",
          "program_name": "school-attendance"}
BOUNDARY = "faultBoundary7"


class RawUpload:
    """A multipart upload written by hand on a socket, so a test decides when each byte leaves,
    when the client stalls and when it vanishes."""

    def __init__(self, port: int, token: str, rows: int, *, file_first: bool = False) -> None:
        self.port, self.token, self.rows = port, token, rows
        self.sent_rows = 0
        fields = [(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
                  .encode() for k, v in FIELDS.items()]
        file_head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n').encode() + HEADER
        end = f"--{BOUNDARY}--\r\n".encode()
        if file_first:  # the fields come late: the server spools the file
            self.head, self.tail = file_head, b"\r\n" + b"".join(fields) + end
        else:
            self.head, self.tail = b"".join(fields) + file_head, b"\r\n" + end
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, rows: int = 0) -> None:
        length = len(self.head) + self.rows * len(ROW) + len(self.tail)
        request = (f"POST /api/ingestion/new_programs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {self.token}\r\n"
                   f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                   f"Content-Length: {length}\r\n\r\n").encode()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(request + self.head)
        await self.send(rows)

    async def send(self, rows: int) -> None:
        rows = min(rows, self.rows - self.sent_rows)
        for start in range(0, rows, 4096):
            self.writer.write(ROW * min(4096, rows - start))
            await self.writer.drain()
        self.sent_rows += rows

    async def finish(self) -> None:
        """The rest of the body; the server may already have answered and closed."""
        try:
            await self.send(self.rows - self.sent_rows)
            self.writer.write(self.tail)
            await self.writer.drain()
        except ConnectionError:
            pass

    async def response(self, timeout_s: float = 60.0) -> tuple[int, dict]:
        async with asyncio.timeout(timeout_s):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            body = await self.reader.readexactly(int(headers["content-length"]))
        return status, json.loads(body)

    def vanish(self) -> None:
        self.writer.transport.abort()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


async def get_token(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(f"{base}/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True)) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


SPEC = {"program": "teacherspresent", "input": {"type": "object", "properties": {
    "date": {"type": "string", "shouldnotnull": True},
    "school_id": {"type": "string", "shouldnotnull": True},
    "teachers_present": {"type": "number", "shouldnotnull": True},
    "remarks": {"type": "string"}}, "required": ["date", "school_id", "teachers_present"]}}
