"""Which API a spec file goes to: a cQube spec (``program`` + ``input``) or a Cerberus schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .failures import CliError

KINDS = ("event", "dimension", "dataset")
DATA_SUFFIXES = (".csv", ".zip", ".xlsx", ".xls", ".tsv", ".txt")
MAX_SPEC_BYTES = 1024 * 1024  # the server's limit: a bigger file is surely not a spec


@dataclass(frozen=True)
class SpecFile:
    path: Path
    kind: str
    format: str  # "cqube" (POST /api/spec/<kind>) or "cerberus" (PUT /api/specs/<kind>/<name>)
    name: str
    body: dict[str, Any]


def default_kind(path: Path) -> str:
    """cQube keeps dimension specs in a ``dimensions/`` folder; everything else is an event."""
    return "dimension" if "dimensions" in path.resolve().parent.parts else "event"


def read_spec_file(path: Path, *, kind: str | None = None, name: str | None = None) -> SpecFile:
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise CliError(f"larger than {MAX_SPEC_BYTES} bytes, not a spec")
        body = json.loads(path.read_bytes())
    except OSError as e:
        raise CliError(f"cannot read it: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        if path.suffix.lower() in DATA_SUFFIXES:
            raise CliError(f"is a data file, not a JSON spec (upload it with `ingest upload "
                           f"{path}`)") from None
        raise CliError(f"is not a JSON spec file: {e}") from None
    kind = kind or default_kind(path)
    if isinstance(body, dict) and "cerberus" in body:
        return SpecFile(path, kind, "cerberus", name or path.stem, body)
    if isinstance(body, dict) and "program" in body and "input" in body:
        if name is not None and name != body["program"]:
            raise CliError(f"--name '{name}' differs from the spec's program "
                           f"'{body['program']}' (a cQube spec is named by its program)")
        return SpecFile(path, kind, "cqube", str(body["program"]), body)
    raise CliError('neither a cQube spec {"program", "input"} nor a Cerberus schema '
                   '{"cerberus": {...}}')
