"""Rows to objects and back: the file's units, decoded in one place.

Timestamps are stored as integer microseconds since the Unix epoch: exact (a
``datetime`` read back equals the one written), compact, and ordered. Each
decoder reads its row in the column order that ``_sql`` renders into the
statements (``JOB_COLUMNS`` and the others), which follows the dataclass.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from offload.job import Batch, ErrorInfo, Event, Job, Salvage, Schedule, WorkerInfo, decode_job
from offload.lifecycle import EventKind, State

Row = tuple[Any, ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
STATE = {s.value: s for s in State}
_KIND = {k.value: k for k in EventKind}


def now_us() -> int:
    """The backend's clock: this machine's, which every process sharing the file shares."""
    return time.time_ns() // 1000


def us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICRO


def opt_us(moment: datetime | None) -> int | None:
    return None if moment is None else us(moment)


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def dt(value: int) -> datetime:
    return _EPOCH + timedelta(0, 0, value)  # positional: a third cheaper than microseconds=


def opt_dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(0, 0, value)


def loads(text: str) -> dict[str, Any]:
    if text == "{}":
        return {}
    value: dict[str, Any] = json.loads(text)
    return value


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":")) if data else "{}"


def error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else json.dumps(error.to_dict(), separators=(",", ":"))


def _error(text: str | None) -> ErrorInfo | None:
    return None if text is None else ErrorInfo.from_dict(json.loads(text))


def job(r: Row) -> Job:
    return decode_job(lambda f: _job(r, f))


def _job(r: Row, f: Salvage) -> Job:
    # Positional, in the dataclass's order (JOB_COLUMNS follows it): a third
    # cheaper than keywords, for every job of a lease or a listing.
    return Job(
        r[0], r[1], r[2], r[3], f("state", lambda: STATE[r[4]], State.DEAD), r[5], r[6], r[7],
        r[8], dt(r[9]), dt(r[10]), r[11], opt_dt(r[12]), opt_dt(r[13]), r[14],
        f("error", lambda: _error(r[15]), None), r[16], r[17], r[18], r[19], r[20], r[21],
        r[22], opt_dt(r[23]), bool(r[24]), f("meta", lambda: loads(r[25]), {}),
    )  # fmt: skip


def event(r: Row) -> Event:
    """An event; job id '' is an event of no job (a pause, a finished batch)."""
    return Event(r[0], r[1] or None, r[2], _KIND[r[3]], dt(r[4]), loads(r[5]))


def schedule(r: Row) -> Schedule:
    return Schedule(
        id=r[0], task=r[1], payload=r[2], cron=r[3], next_run_at=opt_dt(r[4]), tenant=r[5],
        timezone=r[6], queue=r[7], priority=r[8], max_attempts=r[9], timeout=r[10],
        unique=bool(r[11]), last_run_at=opt_dt(r[12]), last_job_id=r[13],
        created_at=opt_dt(r[14]), updated_at=opt_dt(r[15]), meta=loads(r[16]),
        description=r[17],
    )  # fmt: skip


def batch(r: Row) -> Batch:
    """A batch row followed by the counts of its jobs per state, as JSON."""
    counts: dict[str, int] = json.loads(r[8])
    return Batch(
        id=r[0], tenant=r[1], created_at=dt(r[2]), name=r[3], then=r[4],
        finished_at=opt_dt(r[5]), continuation_ids=json.loads(r[6]),
        counts={STATE[state]: n for state, n in counts.items()}, meta=loads(r[7]),
    )  # fmt: skip


def worker(r: Row) -> WorkerInfo:
    return WorkerInfo(
        id=r[0], hostname=r[1], pid=r[2], queues=json.loads(r[3]), concurrency=r[4],
        started_at=dt(r[5]), job_ids=json.loads(r[6]), last_seen_at=dt(r[7]),
        meta=loads(r[8]),
    )  # fmt: skip
