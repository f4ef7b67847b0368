"""The example plugins copied into a plugins folder and a server started with them."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import TEST_CLIENT, basic, make_settings
from ingest_server.web.app import create_app


REPO = Path(__file__).resolve().parent.parent


SCHOOL, WEBHOOK = "school_attendance.py", "webhook_notifier.py"


ATTENDANCE = {"program": "teacher_attendance", "input": {"type": "object", "properties": {
    "date": {"type": "string", "format": "date", "shouldnotnull": True},
    "school_id": {"type": "string", "shouldnotnull": True},
    "total_teachers": {"type": "integer", "shouldnotnull": True},
    "teachers_marked_present": {"type": "integer", "shouldnotnull": True},
    "total_students": {"type": "integer"},
    "students_marked_present": {"type": "integer"},
}, "required": ["date", "school_id", "total_teachers", "teachers_marked_present"]}}


SCHOOL_FIELDS = {"ingestion_type": "event", "ingestion_name": "teacher_attendance",
                 "program_name": "school-attendance"}


def write_plugins(tmp_path: Path, copy=(), **sources: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name in copy:
        shutil.copy(REPO / "plugins" / name, folder / name)
    for name, source in sources.items():
        (folder / f"{name}.py").write_text(source)
    return folder


async def start(aiohttp_client, tmp_path, dsn, copy=(), sources=None, **sections):
    """The production app on a plugins folder, and the headers of a full-scope token."""
    write_plugins(tmp_path, copy, **(sources or {}))
    client = await aiohttp_client(create_app(make_settings(tmp_path, dsn, **sections)))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    return client, {"Authorization": f"Bearer {(await resp.json())['token']}"}
