"""School attendance: the checks of the "school-attendance" programme, as a drop-in plugin.

For uploads whose ``program_name`` is ``school-attendance`` (other programmes are untouched):

* the file's first column must be ``date`` (cQube's event files all start with it);
* ``teachers_marked_present`` may not exceed ``total_teachers``, nor ``students_marked_present``
  ``total_students`` (row error ``present_exceeds_total``);
* valid rows are written with ISO dates and, when both teacher columns are there, a derived
  ``teacher_attendance_pct`` column.

For any spec (e.g. ``PUT /api/specs/event/<name>`` with a Cerberus schema), it adds the coercer
``dmy_date`` (``DD-MM-YYYY`` or ``DD/MM/YYYY``, the usual Indian layout, into a date) and the
rules ``not_in_future: true`` (a date after today) and ``indian_state_code: true`` (one of the
36 state and union territory codes of ISO 3166-2:IN, e.g. ``KA``). Example field:
``{"type": "date", "coerce": "dmy_date", "not_in_future": true, "required": true}``.
"""

from datetime import date, datetime

from ingest_server import hookimpl
from ingest_server.validation import Extensions

__version__ = "1.0.0"
PROGRAM = "school-attendance"
FIRST_COLUMNS = ["date"]
PAIRS = [("teachers_marked_present", "total_teachers"),
         ("students_marked_present", "total_students")]
RATE_COLUMN = "teacher_attendance_pct"
STATE_CODES = frozenset(
    "AN AP AR AS BR CH CT DH DL GA GJ HP HR JH JK KA KL LA LD MH ML MN MP MZ NL OR PB PY RJ SK TG "
    "TN TR UP UT WB".split())


def coerce_dmy_date(value):
    if not isinstance(value, str) or not value.strip():
        return None if isinstance(value, str) else value  # blank: nullable decides
    for fmt in ("%d-%m-%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            pass
    return value  # left as text, so the type rule reports the original cell


def not_in_future(enabled, value):
    if enabled and isinstance(value, date) and value > date.today():
        return f"{value.isoformat()} is in the future"
    return None


def indian_state_code(enabled, value):
    if enabled and value not in STATE_CODES:
        return f"{value!r} is not an Indian state or union territory code (e.g. KA, MH, DL)"
    return None


@hookimpl
def register_cerberus_extensions():
    flag = {"type": "boolean"}  # what the rule takes in a schema: true or false
    return Extensions(coercers={"dmy_date": coerce_dmy_date},
                      rules={"not_in_future": (not_in_future, flag),
                             "indian_state_code": (indian_state_code, flag)})


@hookimpl
def check_header(program, header):
    n = len(FIRST_COLUMNS)
    if program == PROGRAM and header[:n] != FIRST_COLUMNS:
        return [("column_order", f"a {PROGRAM} file must start with the column(s) "
                                 f"{', '.join(FIRST_COLUMNS)}; got {', '.join(header[:n])}")]
    return None


@hookimpl
def wants_rows(program):
    return program == PROGRAM  # other programmes pay nothing per row for this plugin


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@hookimpl
def check_row(program, header, values):
    if program != PROGRAM:
        return None
    errors = []
    for present, total in PAIRS:
        if present in header and total in header:
            p, t = _number(values[present]), _number(values[total])
            if p is not None and t is not None and p > t:
                errors.append((present, "present_exceeds_total",
                               f"{p} marked present but {total} is {t}"))
    return errors


def _has_rate(header):
    return "teachers_marked_present" in header and "total_teachers" in header


@hookimpl
def output_header(program, header):
    if program == PROGRAM and _has_rate(header):
        return [*header, RATE_COLUMN]
    return None


@hookimpl
def transform_row(program, header, row, values):
    if program != PROGRAM:
        return None
    out = [v.isoformat() if isinstance(v, date) else cell
           for cell, v in zip(row, (values[c] for c in header))]
    if _has_rate(header):
        p, t = _number(values["teachers_marked_present"]), _number(values["total_teachers"])
        out.append(f"{100 * p / t:.1f}" if p is not None and t else "")
    return out
