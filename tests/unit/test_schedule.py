"""Cron rules: next firings in a time zone, and the daylight-saving policy."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from offload.ids import derived_id, id_time_millis
from offload.schedule import CronRule

BERLIN = ZoneInfo("Europe/Berlin")


def local(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=BERLIN)  # type: ignore[misc]


def test_five_fields_fire_on_the_minute_in_the_rules_zone() -> None:
    rule = CronRule("30 9 * * 1-5", "Europe/Berlin")
    nxt = rule.next_after(local(2026, 12, 4, 10, 0))  # a Friday, after 09:30
    assert nxt == local(2026, 12, 7, 9, 30).astimezone(UTC)  # Monday
    assert nxt.tzinfo is UTC


def test_six_fields_put_seconds_first() -> None:
    rule = CronRule("*/15 * * * * *")
    start = datetime(2026, 1, 1, 0, 0, 7, 500_000, tzinfo=UTC)
    assert rule.upcoming(start, 3) == [
        datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in (15, 30, 45)
    ]


def test_firings_are_whole_seconds() -> None:
    nxt = CronRule("* * * * * *").next_after(datetime(2026, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC))
    assert nxt.microsecond == 0
    assert nxt == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_a_wall_time_skipped_in_spring_fires_once_just_after_the_gap() -> None:
    rule = CronRule("30 2 * * *", "Europe/Berlin")
    firings = rule.upcoming(local(2026, 3, 28, 12, 0), 2)
    assert [f.astimezone(BERLIN).isoformat() for f in firings] == [
        "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"
    ]  # fmt: skip


def test_a_wall_time_repeated_in_autumn_fires_once() -> None:
    rule = CronRule("30 2 * * *", "Europe/Berlin")
    firings = rule.upcoming(local(2026, 10, 24, 12, 0), 3)
    assert [f.astimezone(BERLIN).isoformat() for f in firings] == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00", "2026-10-27T02:30:00+01:00"
    ]  # fmt: skip


def test_an_interval_rule_follows_real_time_through_the_repeated_hour() -> None:
    rule = CronRule("0 */30 * * * *", "Europe/Berlin")
    firings = rule.upcoming(datetime(2026, 10, 25, 0, 0, tzinfo=UTC), 6)
    gaps = {b - a for a, b in itertools.pairwise(firings)}
    assert gaps == {timedelta(minutes=30)}, firings


@pytest.mark.parametrize(
    ("cron", "zone", "message"),
    [
        ("* * *", "UTC", "has 3 fields"),
        ("61 * * * *", "UTC", "is not valid"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("* * * * *", "America", "unknown time zone"),
        ("0 0 30 2 *", "UTC", "never fires"),
    ],
)
def test_bad_rules_name_the_problem(cron: str, zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronRule(cron, zone)


def test_derived_ids_are_stable_time_ordered_uuid7() -> None:
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    a = derived_id(moment, "schedule", "acme", "nightly")
    assert a == derived_id(moment, "schedule", "acme", "nightly")
    assert a != derived_id(moment, "schedule", "acme", "hourly")
    parsed = uuid.UUID(a)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert id_time_millis(a) == int(moment.timestamp() * 1000)
    later = derived_id(moment + timedelta(milliseconds=1), "x")
    assert later > a
