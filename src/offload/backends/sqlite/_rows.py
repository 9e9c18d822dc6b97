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
    """A row read straight into a job, positionally (the columns follow the
    dataclass): a page of 50 jobs is read twice as fast as through the salvage of
    ``decode_job``, which a row that fails here goes through to say what is wrong."""
    try:
        return Job(
            r[0], r[1], r[2], r[3], STATE[r[4]], r[5], r[6], r[7], r[8], dt(r[9]), dt(r[10]),
            r[11], opt_dt(r[12]), opt_dt(r[13]), r[14], _error(r[15]), r[16], r[17], r[18],
            r[19], r[20], r[21], r[22], opt_dt(r[23]), bool(r[24]), loads(r[25]),
        )  # fmt: skip
    except Exception:  # any field may hold anything a hand-made row put there
        return decode_job(lambda f: _job(r, f))


def _job(r: Row, f: Salvage) -> Job:
    return Job(
        id=r[0], task=r[1], queue=r[2], tenant=r[3],
        state=f("state", lambda: STATE[r[4]], State.DEAD), payload=r[5],
        priority=r[6], attempts=r[7], max_attempts=r[8], created_at=dt(r[9]),
        run_at=dt(r[10]), timeout=r[11], started_at=opt_dt(r[12]),
        finished_at=opt_dt(r[13]), result_data=r[14],
        error=f("error", lambda: _error(r[15]), None),
        checkpoint_data=r[16], progress=r[17], progress_message=r[18], unique_key=r[19],
        batch_id=r[20], worker_id=r[21], lease_token=r[22], lease_expires_at=opt_dt(r[23]),
        cancel_requested=bool(r[24]), meta=f("meta", lambda: loads(r[25]), {}),
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
