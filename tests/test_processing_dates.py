"""The date forms cQube's users write, read as they mean them (not as cQube does)."""

import datetime

import pytest

from ingest_server.processing.dates import parse_cqube_date


@pytest.mark.parametrize("text, expected", [
    ("01/05/23", datetime.date(2023, 5, 1)),
    ("1/5/23", datetime.date(2023, 5, 1)),
    ("31/12/29", datetime.date(2029, 12, 31)),   # yy < 30 -> 20yy
    ("01/01/30", datetime.date(1930, 1, 1)),     # else 19yy, as cQube pivots
    ("01/05/2023", datetime.date(2023, 5, 1)),   # cQube makes this year 3923
    ("2023-05-01", datetime.date(2023, 5, 1)),   # cQube: Invalid Date
    ("29/02/2024", datetime.date(2024, 2, 29)),
])
def test_accepted_forms(text, expected):
    assert parse_cqube_date(text) == expected


@pytest.mark.parametrize("text", ["", "2023/05/01", "01-05-23", "32/01/23", "29/02/23",
                                  "01/13/23", "01/05/023", "01/05/", "a1/05/23", "2023-5-01",
                                  "2023-05-01T00:00", "０1/05/23", " 01/05/23", "01/05/23/1"])
def test_refused_forms_name_the_accepted_ones(text):
    with pytest.raises(ValueError, match=r"dd/MM/yy, dd/MM/yyyy or yyyy-MM-dd"):
        parse_cqube_date(text)
