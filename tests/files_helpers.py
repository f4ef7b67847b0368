"""The sample files staff really have (encodings, delimiters, workbooks), the spool check, and
inferring a spec from a file over the API."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp

from ingest_server.web.appkeys import SETTINGS


FILES = Path(__file__).parent / "data" / "files"


HEADER = ["date", "school_id", "teachers_present", "remarks", "score"]


# attendance.* (header on sheet row 2): rows 3, 5 and 7 valid (dates as ISO text, 12 not
# 12.0, the formulas' cached values 3 and 19.5, the merged remark in its first cell only);
# row 4 has a text count, row 8 no school; row 6 is empty.
WORKBOOK_VALID = [HEADER, ["2024-01-15", "S1", "12", "ok", "3"],
                  ["2024-01-17", "S3", "7.5", "merged remark", ""],
                  ["2024-02-29", "S4", "3", "", "19.5"]]


def spool_left(client) -> list[Path]:
    """Workbooks spooled to disk and not removed."""
    settings = client.app[SETTINGS]
    root = settings.path(settings.server.state_dir) / "spool"
    return sorted(root.iterdir()) if root.exists() else []


TEXT_ROWS = [HEADER, ["2024-01-15", "S1", "12", "café au lait", "1"]]


async def infer(client, headers, content: bytes, filename: str, **fields):
    data = aiohttp.FormData()
    data.add_field("kind", fields.pop("kind", "event"))
    for k, v in fields.items():
        data.add_field(k, v)
    data.add_field("file", io.BytesIO(content), filename=filename)
    resp = await client.post("/api/specs/infer", data=data, headers=headers)
    return resp.status, await resp.json()
