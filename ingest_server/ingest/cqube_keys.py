"""Object keys of ``storage.layout = "cqube"``: exactly where cQube puts files (CQUBE.md §3).

Date folders are ``DD-Mon-YYYY`` (``05-Feb-2024``; English month abbreviations whatever the
locale, ``Sep`` not ``Sept``) in ``storage.timezone``. Names carry no upload id, so an upload of
the same name on the same day **replaces** the earlier valid object — that is this layout's
meaning, and what cQube's processing expects. Each replacement is atomic (a rename on local
storage, a completed multipart upload on S3): a reader sees the old object or the new one,
never a mix. Error files are unique per upload (``<program>_<pid>_errors.csv``, ``pid`` being
the upload's number, as cQube's FileTracker pid).

Program types other than the built-in four keep their own (native) key templates.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# program type -> (valid key, error key); {program} is program_name (or the name without one)
TEMPLATES = {
    "event": ("process_input/{program}/{date}/{name}-event.data.csv",
              "ingestion_error/{program}/{date}/{program}_{pid}_errors.csv"),
    "dimension": ("process_input/dimensions/{date}/{name}-dimension.data.csv",
                  "ingestion_error/{program}/{date}/{program}_{pid}_errors.csv"),
    "dataset": ("process_input/datasets/{date}/{name}-dataset.data.csv",
                "ingestion_error/{program}/{date}/{program}_{pid}_errors.csv"),
    "national": ("emission/{date}/{name}.csv", "emission-error/{date}/{name}_errors.csv"),
}


def cqube_date(now: datetime, timezone: str) -> str:
    """``DD-Mon-YYYY`` of ``now`` (aware) in the IANA ``timezone``."""
    local = now.astimezone(ZoneInfo(timezone))
    return f"{local.day:02d}-{_MONTHS[local.month - 1]}-{local.year:04d}"


def cqube_keys(program_type: str, *, program: str | None, name: str, date: str,
               pid: int) -> tuple[str, str] | None:
    """(valid key, error key), or None for a program type this layout does not know."""
    templates = TEMPLATES.get(program_type)
    if templates is None:
        return None
    values = {"program": program or name, "name": name, "date": date, "pid": pid}
    return templates[0].format(**values), templates[1].format(**values)
