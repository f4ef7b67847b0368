"""The worked example of CQUBE-PROCESSING.md §7 (``teacherspresent``, ``sch_att``), a second
``sch_att`` event for the ratio query of §5, and a compound ``diksha`` dataset; dimension tables in
cQube's shape (§2.2) created directly in a test database."""

from __future__ import annotations

import csv
import io

from ingest_server.processing.grammars import Program, parse_event_grammar

DIMS_HEADER = ("district,block,cluster,school,schoolcategory,schoolmanagement,statecategory,grade")
KEYS_ROW2 = ("district_id,block_id,cluster_id,school_id,schoolcategory_name,schoolmanagement_name,"
             "school_statecategory_name,grade")


def sch_att_grammar(metric: str) -> str:
    return (f",{DIMS_HEADER},\n,{KEYS_ROW2},\n"
            "date,string,string,string,string,string,string,string,string,integer\n"
            f"date,{KEYS_ROW2},{metric}\n"
            "timeDimension,dimension,dimension,dimension,dimension,dimension,dimension,dimension,"
            "dimension,metric\n")


SCH_ATT = Program("school-attendance", "sch_att", ())
TEACHERSPRESENT = parse_event_grammar("school-attendance", "teacherspresent",
                                      sch_att_grammar("teachers_marked_present"))
TEACHERSMARKED = parse_event_grammar("school-attendance", "teachersmarked",
                                     sch_att_grammar("teachers_marked"))

EXAMPLE_CSV = """\
date,district_id,block_id,cluster_id,school_id,schoolcategory_name,schoolmanagement_name,school_statecategory_name,grade,teachers_marked_present
'01/05/23','101','10101','1010101','S1','Primary','Government','Cat A','Grade 1',4
'01/05/23','101','10101','1010101','S2','Primary','Government','Cat A','Grade 1',3
'08/05/23','101','10102','1010201','S3','Upper Primary','Government','Cat A','Grade 2',5
"""

DIKSHA = Program("diksha", "diksha", (("textbookdiksha", "grade", "subject", "medium"),))
LINKEDQR = parse_event_grammar(
    "diksha", "linkedqrcount",
    "textbookdiksha,grade,subject,medium,\n"
    "textbook_id,grade,subject,medium,\n"
    "string,string,string,string,integer\n"
    "textbook_id,grade,subject,medium,linked_qr_count\n"
    "dimension,dimension,dimension,dimension,metric\n")

# Dimension tables as cQube creates them (§2.2): one UNIQUE key column each.
DIMENSIONS = {
    "district": ("district_id", ["101", "102"]),
    "block": ("block_id", ["10101", "10102", "10201"]),
    "cluster": ("cluster_id", ["1010101", "1010201", "1020101"]),
    "school": ("school_id", ["S1", "S2", "S4"]),   # S3 is missing (§7)
    "schoolcategory": ("schoolcategory_name", ["Primary", "Upper Primary"]),
    "schoolmanagement": ("schoolmanagement_name", ["Government", "Private"]),
    "statecategory": ("school_statecategory_name", ["Cat A", "Cat B"]),
    "grade": ("grade", ["Grade 1", "Grade 2", "Grade 3"]),
    "textbookdiksha": ("textbook_id", ["T1", "T2"]),
    "subject": ("subject", ["Maths", "English"]),
    "medium": ("medium", ["Hindi", "English"]),
}


async def create_dimensions(conn) -> None:
    await conn.execute("CREATE SCHEMA IF NOT EXISTS dimensions; CREATE SCHEMA IF NOT EXISTS datasets")
    for dim, (key, values) in DIMENSIONS.items():
        await conn.execute(f'CREATE TABLE IF NOT EXISTS dimensions."{dim}" '
                           f'(id SERIAL PRIMARY KEY, "{key}" VARCHAR UNIQUE)')
        await conn.executemany(f'INSERT INTO dimensions."{dim}" ("{key}") VALUES ($1) '
                               f'ON CONFLICT DO NOTHING', [(v,) for v in values])


def read_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """A cQube-dialect CSV (``'`` quotes) as header + rows."""
    rows = list(csv.reader(io.StringIO(text), quotechar="'"))
    return rows[0], rows[1:]
