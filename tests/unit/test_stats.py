"""offload.stats: backend rows summed into totals and a day-by-day history."""

from __future__ import annotations

from datetime import date

import pytest

from offload.job import DayCount
from offload.lifecycle import State
from offload.stats import MAX_DAYS, Tally, summarize

TODAY = date(2026, 3, 10)


def test_rows_sum_into_totals_per_queue_and_per_day() -> None:
    rows = [
        DayCount("mail", date(2026, 3, 10), State.SUCCEEDED, 5),
        DayCount("mail", date(2026, 3, 10), State.SUCCEEDED, 2),  # stored + live halves
        DayCount("mail", date(2026, 3, 8), State.DEAD, 1),
        DayCount("pdf", date(2025, 1, 1), State.CANCELLED, 4),  # outside the window
    ]
    found = summarize(rows, TODAY, 3)
    assert found.total == Tally(succeeded=7, dead=1, cancelled=4)
    assert (found.total.processed, found.total.failed) == (12, 1)
    assert found.queues == {"mail": Tally(succeeded=7, dead=1), "pdf": Tally(cancelled=4)}
    assert found.days == [
        (date(2026, 3, 8), Tally(dead=1)),
        (date(2026, 3, 9), Tally()),
        (date(2026, 3, 10), Tally(succeeded=7)),
    ]
    assert found.as_dict()["days"][0] == {"day": "2026-03-08", "processed": 1, "failed": 1,
                                          "succeeded": 0, "dead": 1, "cancelled": 0}  # fmt: skip


@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1])
def test_a_history_length_out_of_range_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="days must be between"):
        summarize([], TODAY, days)


def test_only_end_states_are_counted() -> None:
    with pytest.raises(ValueError, match="not an end state"):
        summarize([DayCount("q", TODAY, State.RUNNING, 1)], TODAY, 1)
