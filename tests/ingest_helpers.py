"""Helpers shared by the ingestion tests: specs, forms, and reading what landed in storage."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import aiohttp

SPEC = {
    "program": "teacherspresent",
    "input": {
        "type": "object",
        "properties": {
            "date": {"type": "string", "shouldnotnull": True},
            "school_id": {"type": "string", "shouldnotnull": True},
            "teachers_present": {"type": "number", "shouldnotnull": True},
            "remarks": {"type": "string"},
            "score": {"type": "number"},
        },
        "required": ["date", "school_id", "teachers_present"],
    },
}


async def register(client, headers, spec=SPEC, kind="event"):
    resp = await client.post(f"/api/spec/{kind}", json=spec, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


def form(content: bytes, *, fields: dict | None = None, file_first: bool = False,
         filename: str = "data.csv", content_type: str = "text/csv") -> aiohttp.FormData:
    data = aiohttp.FormData()
    fields = fields if fields is not None else {
        "ingestion_type": "event", "ingestion_name": "teacherspresent",
        "program_name": "school-attendance"}

    def add_fields():
        for k, v in fields.items():
            data.add_field(k, v)

    if not file_first:
        add_fields()
    data.add_field("file", io.BytesIO(content), filename=filename, content_type=content_type)
    if file_first:
        add_fields()
    return data


async def upload(client, headers, content: bytes, *, path="/api/ingestion/new_programs",
                 params=None, extra_headers=None, **kw):
    h = dict(headers, **(extra_headers or {}))
    resp = await client.post(path, data=form(content, **kw), headers=h, params=params)
    return resp.status, await resp.json()


def landed(root: Path) -> list[str]:
    """Every published object under a local storage root (staging excluded)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and ".staging" not in p.parts)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))
