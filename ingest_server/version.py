"""The release and the database schema this code is, each from one place.

The release is the ``version`` of ``pyproject.toml`` (the package metadata is built from it); the
schema version is the number of the newest migration shipped in ``migrations/``. Nothing else
spells either: ``--version``, ``/healthz``, the start-up block and the OpenAPI document ask here.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

DISTRIBUTION = "ingest-server"
MIGRATION_NAME = re.compile(r"^(\d+)_.*\.sql$")


def _release() -> str:
    # A source checkout (an editable install, or the code run from a folder on PYTHONPATH) reads
    # its own pyproject.toml: the installed metadata may belong to another checkout of the package.
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        with open(pyproject, "rb") as f:
            project = tomllib.load(f).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return project["version"]
    from importlib import metadata  # noqa: PLC0415 - only installed copies need it (~2 MB)

    return metadata.version(DISTRIBUTION)


__version__ = _release()


def migration_versions() -> list[int]:
    """The number of every migration shipped with this code, ascending."""
    from importlib import resources  # noqa: PLC0415 - not in every process (~1 MB)

    names = (entry.name for entry in resources.files("ingest_server.migrations").iterdir())
    return sorted(int(m.group(1)) for m in map(MIGRATION_NAME.match, names) if m)


@cache
def schema_version() -> int:
    """The newest migration this code ships: what it migrates a database to."""
    return max(migration_versions(), default=0)
