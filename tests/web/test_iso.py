"""Times in answers are written by orjson, as ``isoformat`` writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from offload.web.resources import iso


class Odd(tzinfo):
    """A tzinfo orjson does not know: the text still comes from ``isoformat``."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=-3, minutes=-30)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 2, 17, 9, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 2, 17, 9, 0, tzinfo=UTC),  # no fraction
        datetime(2026, 12, 2, 17, 9, 0, 7, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999),  # naive
        datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        datetime(2026, 1, 1, 12, tzinfo=Odd()),
    ],
    ids=str,
)
def test_iso_writes_what_isoformat_writes(moment: datetime) -> None:
    assert iso(moment) == moment.isoformat()


def test_no_time_is_null() -> None:
    assert iso(None) is None
