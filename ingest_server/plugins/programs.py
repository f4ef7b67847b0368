"""Program types: what an ``ingestion_type`` means — which spec to use and where objects go."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadRequest

# Names coming from clients end up inside object keys: keep them to a safe alphabet. Matched
# with fullmatch: "$" alone also matches before a trailing newline ("evil\n" passed).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
# The file names each file kind accepts (a name without an extension passes).
# A "csv" file may also be a workbook (read natively: ``workbook/``) or a tab-separated export.
EXTENSIONS = {"csv": (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"),
              "zip": (".zip",)}
# Programme folders the built-in layout uses for dimensions and datasets: event data there would
# mix with them.
RESERVED_PROGRAMS = frozenset({"dimensions", "datasets"})


def safe_name(value: str, field: str) -> str:
    """Return ``value`` if it is safe inside an object key, else a 400 naming the field."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise BadRequest(f"{field} must be 1-200 characters of letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit", code="invalid_name", field=field)
    return value


def program_name(value: str) -> str:
    """A ``program_name``: a safe name that is not one of the shared folders."""
    safe_name(value, "program_name")
    if value.lower() in RESERVED_PROGRAMS:
        raise BadRequest(f"program_name '{value}' is reserved (the {value.lower()} folder is "
                         "shared by every dimension or dataset upload)", code="reserved_name",
                         field="program_name")
    return value


@dataclass(frozen=True)
class ProgramType:
    """One kind of upload. Key templates may use {program}, {name}, {date} and {upload_id}."""

    name: str
    route: str                      # "new_programs" (CSV) or "national_programs" (ZIP)
    spec_kind: str                  # kind of spec to validate with: event, dimension or dataset
    valid_key: str
    error_key: str
    file_kinds: tuple[str, ...] = ("csv",)
    needs_program: bool = True      # whether ``program_name`` is required
    allow_unknown_columns: bool | None = None  # True: columns not in the spec pass through unchecked
    description: str = ""

    @property
    def archive(self) -> bool:
        """An archive of CSVs (``<name>.csv`` members, one spec each) rather than one CSV."""
        return "zip" in self.file_kinds

    @property
    def extensions(self) -> tuple[str, ...]:
        """The file name endings this type accepts, from its ``file_kinds``."""
        return tuple(e for kind in self.file_kinds for e in EXTENSIONS.get(kind, (f".{kind}",)))

    def keys(self, *, program: str, name: str, date: str, upload_id: str) -> tuple[str, str]:
        values = {"program": program or name, "name": name, "date": date, "upload_id": upload_id}
        return self.valid_key.format(**values), self.error_key.format(**values)
