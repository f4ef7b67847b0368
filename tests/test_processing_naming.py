"""cQube's dataset names, hash, time buckets and metric parsing (CQUBE-PROCESSING.md §2.3, §2.4)."""

import datetime

import pytest

from ingest_server.processing import buckets, naming


# Entries of cQube query-builder's src/maps/table_names.json (lines 5, 6 and 11): expanded name →
# the physical name cQube created.
QB_TABLE_NAMES = {
    "diksha_avgplaytime_state0grade0subject0medium": "diksha_avgplaytime_PXd7TnFwXWEjOnJ6aWh8",
    "diksha_linkedqrcount_textbookdiksha0grade0subject0medium":
        "diksha_linkedqrcount_BAgOAU1jKR8ZCwE6eG90",
    "udise_category_state0categoryudise": "udise_category_Ynl7YgBvAAAAAAAAAAAq",
    "nishtha_consumptioncompletion_district0programnishtha":
        "nishtha_consumptioncompletion_EwcGAQ0aBzo_emh1fXFO",
    "nishtha_mediumtotalcourses_state0programnishtha":
        "nishtha_mediumtotalcourses_HRkidGVoc19_bXlfdXFh",
}


def test_hash_test_vector():
    assert naming.cqube_hash("diksha_avgplaytime_state0grade0subject0medium") == \
        "PXd7TnFwXWEjOnJ6aWh8"


@pytest.mark.parametrize("expanded,table", sorted(QB_TABLE_NAMES.items()))
def test_compound_names_match_query_builder_map(expanded, table):
    ns, evt = table.split("_")[0], table.split("_")[1]
    dims = tuple(expanded[len(ns) + len(evt) + 2:].split("0"))
    assert naming.compound_expanded(ns, evt, dims, None) == expanded
    assert naming.compound_table(ns, evt, expanded) == table


def test_hash_replaces_plus_and_slash():
    # '/' is the 63rd base64 digit: a name folding to bytes 0xFF... gives '/', so '_' in H
    assert "_" in naming.cqube_hash("nishtha_consumptioncompletion_district0programnishtha")
    text = naming.cqube_hash("\u00ff" * 8)
    assert "+" not in text and "/" not in text


def test_single_and_compound_names():
    assert naming.single_name("sch_att", "teachers_marked_present", "district", "Daily") == \
        "sch_att_teachers_marked_present_Daily_district"
    assert naming.single_name("nas", "performance", "district", None) == \
        "nas_performance_district"
    assert naming.compound_expanded("diksha", "x", ("a", "b"), "Weekly") == "diksha_x_Weekly_a0b"
    assert naming.physical("sch_att_x_Daily_district") == "sch_att_x_daily_district"


@pytest.mark.parametrize("day,week", [
    ("2023-01-01", (1, 2023)), ("2023-01-07", (1, 2023)), ("2023-01-08", (2, 2023)),
    ("2023-05-01", (18, 2023)), ("2023-05-08", (19, 2023)), ("2023-12-31", (53, 2023)),
    ("2024-12-30", (53, 2024)), ("2024-02-29", (9, 2024)),
])
def test_cqube_week(day, week):
    assert buckets.cqube_week(datetime.date.fromisoformat(day)) == week


def test_iso_week_differs():
    d = datetime.date(2023, 1, 1)  # a Sunday: ISO week 52 of 2022, cQube week 1 of 2023
    assert buckets.time_values("Weekly", d, "iso") == (52, 2022)
    assert buckets.time_values("Weekly", d, "cqube") == (1, 2023)
    assert buckets.time_values("Daily", d) == (d,)
    assert buckets.time_values("Monthly", d) == (1, 2023)
    assert buckets.time_values("Yearly", d) == (2023,)
    assert buckets.time_values(None, d) == ()


def test_metric_number_and_parseint():
    number = buckets.metric_parser("number")
    js = buckets.metric_parser("parseint")
    assert number("12.7") == 12.7 and js("12.7") == 12.0
    assert js("-3.9") == -3.0 and js(" 42abc") == 42.0 and js("0x10") == 16.0
    assert js("") != js("")  # NaN, as parseInt('') is
    with pytest.raises(ValueError):
        number("abc")
    with pytest.raises(ValueError):
        number("nan")
