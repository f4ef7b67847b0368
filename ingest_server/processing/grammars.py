"""cQube's grammar files, parsed as cQube's processing reads them (CQUBE-PROCESSING.md §1.3, §1.4).

Pure: no database. A grammar cQube could not use raises :class:`GrammarInvalid` naming the row and
the column (both 1-based, as a person counts them in the file). Checks that need the other
registered grammars (an event column's dimension exists, its key is unique there) are in
:func:`check_event_links`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from ..errors import GrammarInvalid

__all__ = ["DimensionColumn", "DimensionGrammar", "EventColumn", "EventGrammar", "GrammarInvalid",
           "Program", "TYPES", "ROLES", "check_event_links", "parse_dimension_grammar",
           "parse_event_grammar", "parse_program", "valid_name"]

TYPES = ("string", "number", "integer", "date")
ROLES = ("timeDimension", "dimension", "metric")
FLAGS = ("PK", "Index", "")
# cQube writes these names unquoted into SQL; PostgreSQL folds them to lower case.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PROGRAM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
# cQube adds this column to every dimension table itself.
_RESERVED = "id"


def valid_name(name: str, *, program: bool = False) -> bool:
    """Whether ``name`` may name a dimension, an event or a column (``program``: a programme
    folder such as ``school-attendance``)."""
    return bool((_PROGRAM if program else _IDENTIFIER).fullmatch(name))


@dataclass(frozen=True)
class DimensionColumn:
    name: str
    type: str  # string | number | integer | date
    pk: bool
    index: bool


@dataclass(frozen=True)
class DimensionGrammar:
    name: str
    columns: tuple[DimensionColumn, ...]

    @property
    def pk(self) -> str | None:
        return next((c.name for c in self.columns if c.pk), None)

    @property
    def indexes(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.index)

    @property
    def key_column(self) -> str:
        """The column event keys are looked up in: the PK, else the first Index column."""
        return self.pk or self.indexes[0]

    @property
    def unique_columns(self) -> tuple[str, ...]:
        """Columns cQube makes UNIQUE: string columns flagged PK or Index (QBS:80-82)."""
        return tuple(c.name for c in self.columns if (c.pk or c.index) and c.type == "string")

    def column(self, name: str) -> DimensionColumn | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class EventColumn:
    dimension: str | None
    dimension_key: str | None
    type: str
    name: str
    role: str  # timeDimension | dimension | metric


@dataclass(frozen=True)
class EventGrammar:
    program: str
    name: str
    columns: tuple[EventColumn, ...]

    @property
    def time_column(self) -> EventColumn | None:
        """The time dimension: only column 0 counts (cQube's isTimeDimensionPresent)."""
        first = self.columns[0]
        return first if first.role == "timeDimension" else None

    @property
    def dimension_columns(self) -> tuple[EventColumn, ...]:
        return tuple(c for c in self.columns if c.role == "dimension")

    @property
    def metric(self) -> EventColumn:
        """The first metric column; cQube aggregates only that one."""
        return next(c for c in self.columns if c.role == "metric")


@dataclass(frozen=True)
class Program:
    name: str
    namespace: str
    whitelisted: tuple[tuple[str, ...], ...]


def _rows(text: str, expected: int, what: str) -> list[list[str]]:
    """Lines trimmed (a CR, a BOM, spaces), blank ones dropped, cells split on commas and trimmed,
    as cQube's readers do; the row count and equal lengths checked."""
    # str.strip() leaves a BOM; JavaScript's trim() (cQube) removes it.
    rows = [[cell.strip() for cell in line.split(",")]
            for line in (raw.strip().lstrip("\ufeff") for raw in text.split("\n")) if line]
    if len(rows) != expected:
        raise GrammarInvalid(min(len(rows) + 1, expected + 1), None,
                             f"a {what} grammar has {expected} rows, this one has {len(rows)}")
    width = len(rows[0])
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise GrammarInvalid(r, min(len(row), width) + 1,
                                 f"row {r} has {len(row)} cells, row 1 has {width}")
    return rows


def _column_names(row: list[str], r: int) -> None:
    seen: dict[str, int] = {}
    for c, name in enumerate(row, start=1):
        if not name:
            raise GrammarInvalid(r, c, "the column name is empty")
        if not valid_name(name):
            raise GrammarInvalid(r, c, f"{name!r} is not a column name cQube can use (letters, "
                                       "digits and _, not starting with a digit, at most 63)")
        if name.lower() in seen:
            raise GrammarInvalid(r, c, f"{name!r} repeats column {seen[name.lower()]} (PostgreSQL "
                                       "folds names to lower case)")
        seen[name.lower()] = c


def _types(row: list[str], r: int) -> None:
    for c, t in enumerate(row, start=1):
        if t not in TYPES:
            raise GrammarInvalid(r, c, f"unknown type {t!r} (one of {', '.join(TYPES)})")


def parse_dimension_grammar(name: str, text: str) -> DimensionGrammar:
    """A ``<dim>-dimension.grammar.csv``: row 1 PK/Index flags, row 2 types, row 3 names."""
    if not valid_name(name):
        raise GrammarInvalid(None, None, f"{name!r} is not a dimension name cQube can use")
    flags, types, names = _rows(text, 3, "dimension")
    for c, flag in enumerate(flags, start=1):
        if flag not in FLAGS:
            raise GrammarInvalid(1, c, f"unknown flag {flag!r} (PK, Index or empty)")
    _types(types, 2)
    _column_names(names, 3)
    for c, col in enumerate(names, start=1):
        if col.lower() == _RESERVED:
            raise GrammarInvalid(3, c, "'id' is the column cQube adds to every dimension table")
    pks = [c for c, f in enumerate(flags, start=1) if f == "PK"]
    if len(pks) > 1:
        raise GrammarInvalid(1, pks[1], f"a second PK (column {pks[0]} is the first)")
    keys = pks or [c for c, f in enumerate(flags, start=1) if f == "Index"]
    if not keys:
        raise GrammarInvalid(1, None, "no PK or Index column: event keys have nothing to match")
    if types[keys[0] - 1] != "string":
        raise GrammarInvalid(2, keys[0], "the key column must be a string (cQube makes only "
                                         "string columns unique)")
    columns = tuple(DimensionColumn(n, t, f == "PK", f == "Index")
                    for f, t, n in zip(flags, types, names))
    return DimensionGrammar(name, columns)


def parse_event_grammar(program: str, name: str, text: str) -> EventGrammar:
    """A ``<event>-event.grammar.csv``: dimension names, dimension key columns, types, column
    names, roles."""
    if not valid_name(program, program=True):
        raise GrammarInvalid(None, None, f"{program!r} is not a programme folder name")
    if not valid_name(name):
        raise GrammarInvalid(None, None, f"{name!r} is not an event name cQube can use")
    dims, keys, types, names, roles = _rows(text, 5, "event")
    for c, role in enumerate(roles, start=1):
        if role not in ROLES:
            raise GrammarInvalid(5, c, f"unknown role {role!r} (one of {', '.join(ROLES)})")
    _types(types, 3)
    _column_names(names, 4)
    for c, (dim, key, typ, col, role) in enumerate(zip(dims, keys, types, names, roles), start=1):
        if role == "dimension":
            if not dim:
                raise GrammarInvalid(1, c, "a dimension column names no dimension")
            if not valid_name(dim):
                raise GrammarInvalid(1, c, f"{dim!r} is not a dimension name")
            if not key:
                raise GrammarInvalid(2, c, "a dimension column names no key column")
            if key != col:
                # cQube reads the cell by the row-4 name and joins on the same name (§1.4).
                raise GrammarInvalid(2, c, f"the key column {key!r} differs from the column name "
                                           f"{col!r} (row 4); cQube joins on one name")
        else:
            if dim or key:
                raise GrammarInvalid(1 if dim else 2, c,
                                     f"a {role} column names a dimension; only role dimension may")
            if role == "timeDimension":
                if c != 1:
                    raise GrammarInvalid(5, c, "timeDimension must be the first column (cQube "
                                               "looks for it only there)")
                if col != "date" or typ != "date":
                    raise GrammarInvalid(4 if col != "date" else 3, c,
                                         "the time column must be named 'date' of type date "
                                         "(cQube reads the column 'date')")
            elif typ not in ("integer", "number"):
                raise GrammarInvalid(3, c, f"a metric must be integer or number, not {typ!r}")
    if "metric" not in roles:
        raise GrammarInvalid(5, None, "no metric column")
    columns = tuple(EventColumn(d or None, k or None, t, n, r)
                    for d, k, t, n, r in zip(dims, keys, types, names, roles))
    return EventGrammar(program, name, columns)


def check_event_links(event: EventGrammar, dimensions: Mapping[str, DimensionGrammar]) -> None:
    """Each dimension column names a registered dimension and a column unique there."""
    for c, col in enumerate(event.columns, start=1):
        if col.role != "dimension":
            continue
        dim = dimensions.get(col.dimension or "")
        if dim is None:
            raise GrammarInvalid(1, c, f"dimension {col.dimension!r} is not registered",
                                 dimension=col.dimension)
        if dim.column(col.dimension_key or "") is None:
            raise GrammarInvalid(2, c, f"{col.dimension_key!r} is not a column of dimension "
                                       f"{dim.name!r}", dimension=dim.name)
        if col.dimension_key not in dim.unique_columns:
            raise GrammarInvalid(2, c, f"{col.dimension_key!r} is not unique in dimension "
                                       f"{dim.name!r} (unique: {', '.join(dim.unique_columns)})",
                                 dimension=dim.name)


def parse_program(name: str, entry: Mapping) -> Program:
    """A programme as cQube's ``config.json`` has it (``namespace``; ``whitelisted`` as a list of
    "a,b" strings or a ``dimensions.whitelisted`` list); entries trimmed as ``ingest`` does."""
    if not valid_name(name, program=True):
        raise GrammarInvalid(None, None, f"{name!r} is not a programme folder name")
    namespace = entry.get("namespace")
    if not isinstance(namespace, str) or not valid_name(namespace):
        raise GrammarInvalid(None, None, "namespace must be a name of letters, digits and _",
                             field="namespace")
    listed = entry.get("whitelisted")
    if listed is None:
        listed = (entry.get("dimensions") or {}).get("whitelisted", [])
    if not isinstance(listed, list) or not all(isinstance(w, str) for w in listed):
        raise GrammarInvalid(None, None, "whitelisted must be a list of strings such as "
                                         "\"state,grade\"", field="whitelisted")
    combos = []
    for i, w in enumerate(listed):
        names = tuple(n.strip() for n in w.split(","))
        if not all(valid_name(n) for n in names):
            raise GrammarInvalid(None, None, f"whitelisted[{i}] {w!r} is not a comma-separated "
                                             "list of dimension names", field="whitelisted")
        combos.append(names)
    return Program(name, namespace, tuple(combos))
