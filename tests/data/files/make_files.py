"""How the files in this folder were made (run by hand: ``python make_files.py``; the outputs are
committed, the tests only read them).

The workbooks: openpyxl writes ``attendance-openpyxl.xlsx`` (real dates, numbers, formulas,
merged cells, a header on row 2 under an empty row, an empty row among the data); LibreOffice
Calc (headless, ``soffice --convert-to``) then saves it as ``.xlsx`` (with the formulas' cached
values, which openpyxl cannot write), ``.xls`` (Excel 97-2003) and ``.ods``, as a user's
spreadsheet program would. No copy of Excel is available here: these are LibreOffice-made files.
The text files are what Excel's "Save as" writes: "Unicode Text" (UTF-16 LE with a BOM, tabs),
a semicolon-separated CSV (many European locales), and a cp1252 ("ANSI") CSV.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import tempfile
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
HEADER = ["date", "school_id", "teachers_present", "remarks", "score"]


def workbook(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Attendance"
    ws.append([])  # row 1 empty: the header is the first non-empty row
    ws.append(HEADER)  # row 2
    ws.append([datetime.date(2024, 1, 15), "S1", 12, "ok", "=C3/4"])  # row 3
    ws.append([datetime.date(2024, 1, 16), "S2", "abc", "not a number", None])  # row 4
    ws.append([datetime.datetime(2024, 1, 17), "S3", 7.5, "merged remark", None])  # row 5
    ws.merge_cells("D5:E5")
    ws.append([])  # row 6 empty
    ws.append([datetime.date(2024, 2, 29), "S4", 3, None, "=SUM(C3,C5)"])  # row 7
    ws.append([datetime.date(2024, 3, 1), None, 4, "no school", 1])  # row 8
    for row in ws.iter_rows(min_row=3, max_row=8, max_col=1):
        row[0].number_format = "dd/mm/yyyy"  # shown the Indian way, stored as a date
    wb.save(path)


def two_sheets(path: Path) -> None:
    wb = openpyxl.Workbook()
    jan = wb.active
    jan.title = "January"
    jan.append(HEADER)
    jan.append([datetime.date(2024, 1, 15), "S1", 12, "jan", 1])
    feb = wb.create_sheet("February")
    feb.append(HEADER)
    feb.append([datetime.date(2024, 2, 15), "S9", 20, "feb", 2])
    feb.append([datetime.date(2024, 2, 16), "S10", 21, "feb", 2.25])
    wb.save(path)


def convert(source: Path, fmt: str, target: Path) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise SystemExit("LibreOffice is needed: apt-get install -y libreoffice-calc-nogui")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([soffice, "--headless", "--calc", "--convert-to", fmt, "--outdir", out,
                        str(source)], check=True, capture_output=True, timeout=120)
        made = next(Path(out).iterdir())
        shutil.move(made, target)


def text_files() -> None:
    rows = [HEADER, ["2024-01-15", "S1", "12", "café au lait", "1"],
            ["2024-01-16", "S2", "x", "Müller – straße", "2"]]
    unicode_text = "".join("\t".join(r) + "\r\n" for r in rows)
    (HERE / "unicode-text.txt").write_bytes(b"\xff\xfe" + unicode_text.encode("utf-16-le"))
    (HERE / "semicolon.csv").write_bytes(
        "".join(";".join(r) + "\r\n" for r in rows).encode("utf-8"))
    (HERE / "ansi-cp1252.csv").write_bytes(
        "".join(",".join(r) + "\r\n" for r in rows).encode("cp1252"))


def main() -> None:
    text_files()
    raw = HERE / "attendance-openpyxl.xlsx"
    workbook(raw)
    two_sheets(HERE / "two-sheets.xlsx")
    convert(raw, "xlsx:Calc MS Excel 2007 XML", HERE / "attendance.xlsx")
    convert(raw, "xls:MS Excel 97", HERE / "attendance.xls")
    convert(raw, "ods:calc8", HERE / "attendance.ods")


if __name__ == "__main__":
    main()
