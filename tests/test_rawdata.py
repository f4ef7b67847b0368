"""``ingest_server.rawdata``: "today" for getRawData is the day of ``storage.timezone`` (the zone
of the cqube layout's date folders), not the server's local day."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from ingest_server.stores.rawdata import today_start


def test_today_starts_at_midnight_in_the_storage_time_zone():
    evening_utc = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)  # 01:30 on the 8th in India
    assert today_start("Asia/Kolkata", now=evening_utc) == datetime(
        2026, 12, 8, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert today_start("UTC", now=evening_utc) == datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert today_start("America/Los_Angeles", now=evening_utc).isoformat() == \
        "2026-12-07T00:00:00-08:00"
