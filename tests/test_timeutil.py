from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gateway.timeutil import aware


def test_a_naive_time_is_read_as_utc() -> None:
    assert aware(datetime(2026, 5, 1, 8, 30)) == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def test_a_time_with_a_zone_keeps_it_and_none_stays_none() -> None:
    beijing = datetime(2026, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=8)))
    assert aware(beijing) is beijing
    assert aware(None) is None
