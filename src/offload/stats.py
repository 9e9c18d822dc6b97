"""All-time statistics: what the rows of ``Backend.job_stats`` add up to.

A backend answers with raw (queue, day, outcome, count) rows, some from the
counts its purge pass kept and some from ended jobs not purged yet; this module
sums them into what people read: totals per queue since the first job, and a
per-day history for the last days. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta

from offload.backends.base import Backend
from offload.job import DayCount
from offload.lifecycle import State

OUTCOMES = (State.SUCCEEDED, State.DEAD, State.CANCELLED)
"""The end states counted, in display order. A discarded job (a task with
``dead_letter=False``) ends ``cancelled`` and is counted there."""

MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Tally:
    """Jobs ended per outcome. ``processed`` counts every ended job and
    ``failed`` the dead ones, the two numbers Sidekiq users look for."""

    succeeded: int = 0
    dead: int = 0
    cancelled: int = 0

    @property
    def processed(self) -> int:
        return self.succeeded + self.dead + self.cancelled

    @property
    def failed(self) -> int:
        return self.dead

    def plus(self, outcome: State, count: int) -> Tally:
        if outcome not in OUTCOMES:
            raise ValueError(f"{outcome.value!r} is not an end state")
        values = {o.value: getattr(self, o.value) for o in OUTCOMES}
        values[outcome.value] += count
        return Tally(**values)

    def as_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "failed": self.failed,
            **{o.value: getattr(self, o.value) for o in OUTCOMES},
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """All-time totals (overall and per queue) and the last ``len(days)`` days,
    oldest first, every day present (a quiet day is all zeros)."""

    total: Tally
    queues: dict[str, Tally] = field(default_factory=dict)
    days: list[tuple[date, Tally]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total.as_dict(),
            "queues": {q: t.as_dict() for q, t in sorted(self.queues.items())},
            "days": [{"day": d.isoformat(), **t.as_dict()} for d, t in self.days],
        }


def check_days(days: int) -> int:
    """Refuse a history length a reader could not mean."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    return days


def summarize(rows: Iterable[DayCount], today: date, days: int) -> Stats:
    """Sum backend rows into totals and a history of ``days`` days ending ``today``."""
    first = today - timedelta(days=check_days(days) - 1)
    total, queues = Tally(), dict[str, Tally]()
    history = {first + timedelta(days=i): Tally() for i in range(days)}
    for row in rows:
        total = total.plus(row.outcome, row.count)
        queues[row.queue] = queues.get(row.queue, Tally()).plus(row.outcome, row.count)
        if row.day in history:
            history[row.day] = history[row.day].plus(row.outcome, row.count)
    return Stats(total, queues, sorted(history.items()))


async def collect(backend: Backend, tenant: str | None, queue: str | None, days: int) -> Stats:
    """Read and sum: "today" is the backend clock's UTC day, like the rows' days."""
    check_days(days)
    rows = await backend.job_stats(tenant, queue)
    return summarize(rows, (await backend.now()).astimezone(UTC).date(), days)
