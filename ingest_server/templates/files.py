"""A spec's template as a file: CSV (the header, and an example row when asked) or ``.xlsx``
(a "data" sheet with the header, a number or date format per column, a drop-down list for
each ``enum``/``allowed`` column; a "rules" sheet saying in words what each column holds).
Blocking (openpyxl builds the workbook in memory; a template is a few kB): run in a thread."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any, Mapping, Sequence

from .rules import allowed, in_words, kind_of, not_blank, required

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_VALIDATED_ROWS = 5000
_LIST_LIMIT = 255  # Excel's limit for a list written inline in the validation


def csv_template(header: Sequence[str], example: Sequence[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    if example is not None:
        writer.writerow(example)
    return out.getvalue().encode("utf-8")


def _excel_format(rules: Mapping[str, Any]) -> str:
    kind = kind_of(rules)
    if kind == "date":
        fmt = rules.get("date_format") or "%Y-%m-%d"
        return (fmt.replace("%Y", "yyyy").replace("%y", "yy").replace("%m", "mm")
                .replace("%d", "dd"))
    if kind == "datetime":
        return "yyyy-mm-dd hh:mm:ss"
    if kind == "integer":
        return "0"
    if kind == "number":
        return "General"
    return "@"  # text: "007" stays "007", a long id does not become 1.2E+15


def _cell_value(text: str, rules: Mapping[str, Any]) -> Any:
    """An example value as Excel would hold it (a real date, a real number)."""
    if text == "":
        return None
    kind = kind_of(rules)
    try:
        if kind == "date":
            return datetime.strptime(text, rules.get("date_format") or "%Y-%m-%d").date()
        if kind == "datetime":
            return datetime.fromisoformat(text)
        if kind == "integer":
            return int(text)
        if kind == "number":
            number = float(text)
            return int(number) if number.is_integer() else number
    except ValueError:
        return text
    return text


def xlsx_template(name: str, header: Sequence[str], schema: Mapping[str, Any],
                  example: Sequence[str] | None = None) -> bytes:
    from openpyxl import Workbook  # noqa: PLC0415 - only templates need it
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    data = book.active
    data.title = "data"
    rules_sheet = book.create_sheet("rules")
    lists = None
    data.append(list(header))
    for cell in data[1]:
        cell.font = Font(bold=True)
    data.freeze_panes = "A2"
    if example is not None:
        data.append([_cell_value(v, schema.get(c) or {}) for c, v in zip(header, example)])
    for i, column in enumerate(header, start=1):
        rules = schema.get(column) or {}
        letter = get_column_letter(i)
        data.column_dimensions[letter].width = max(12, min(40, len(column) + 4))
        fmt = _excel_format(rules)
        for row in range(2, 202):  # the first rows people type into (a column style is not
            data.cell(row=row, column=i).number_format = fmt  # kept by every program)
        values = allowed(rules)
        if values:
            inline = ",".join(values)
            if len(inline) + 2 <= _LIST_LIMIT and not any("," in v or '"' in v for v in values):
                formula = f'"{inline}"'
            else:
                if lists is None:
                    lists = book.create_sheet("lists")
                    lists.sheet_state = "hidden"
                for r, value in enumerate(values, start=1):
                    lists.cell(row=r, column=i, value=value)
                formula = (f"{quote_sheetname('lists')}!${letter}$1:${letter}${len(values)}")
            check = DataValidation(type="list", formula1=formula, allow_blank=not not_blank(rules),
                                   showErrorMessage=True, errorTitle=column,
                                   error=f"{column}: {in_words(rules)}")
            check.add(f"{letter}2:{letter}{_VALIDATED_ROWS}")
            data.add_data_validation(check)
    rules_sheet.append(["column", "required", "may be blank", "what it holds", "example"])
    for cell in rules_sheet[1]:
        cell.font = Font(bold=True)
    for i, column in enumerate(header):
        rules = schema.get(column) or {}
        rules_sheet.append([column, "yes" if required(rules) else "no",
                            "no" if not_blank(rules) else "yes",
                            in_words(rules) if rules else "not in the spec",
                            example[i] if example is not None else ""])
    rules_sheet.append([])
    rules_sheet.append([f"Template of the spec '{name}', made {date.today().isoformat()}. Fill "
                        "the 'data' sheet (keep its first row), save, and upload the workbook "
                        "as it is: it is read directly, no CSV export needed."])
    for letter, width in zip("ABCDE", (24, 10, 12, 60, 20)):
        rules_sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_file(spec: Any, fmt: str, example: bool,
                  plugins_dir: str | None) -> tuple[bytes, str, str]:
    """``(body, content type, file name)`` of ``spec``'s template in ``fmt`` (csv or xlsx)."""
    from ..ingest.checker import build_checker  # noqa: PLC0415
    from ..stores.specs import ordered_columns
    from ..validation.translate import spec_allows_unknown
    from .rules import example_row

    header = ordered_columns(spec)
    row = None
    if example:
        checker = build_checker(plugins_dir, spec.cache_key, spec.cerberus, header, spec.kind,
                                spec.name, None, spec_allows_unknown(spec.source))
        row = example_row(header, spec.cerberus, checker.check)
    if fmt == "xlsx":
        return (xlsx_template(spec.name, header, spec.cerberus, row), XLSX_TYPE,
                f"{spec.name}-template.xlsx")
    return csv_template(header, row), "text/csv", f"{spec.name}-template.csv"
