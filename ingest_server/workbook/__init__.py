"""Spreadsheet workbooks (``.xlsx``, ``.xlsm``, ``.xlsb``, ``.xls``, ``.ods``) read as CSV.

A workbook is recognised by its bytes (``sniff``), spooled to disk, and one sheet of it is turned
into a stream of UTF-8 CSV bytes (``sheet``) that goes through the same pipeline as any CSV file:
one set of checks, one error file format. Cells become the text a CSV export would hold, with
the spec's date layout for dates (``cells``). Reading is Rust's calamine: ``.xlsx``/``.xlsm``
streamed row by row (python-calamine-plus), the other formats decoded whole (python-calamine),
within ``limits.max_workbook_cells``.
"""
