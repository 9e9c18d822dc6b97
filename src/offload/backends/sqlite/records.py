"""Pauses, schedules, batches, shared limits and the worker registry: the work
done on the connection's thread, each function one transaction (or one read).

Concurrency slots, rate windows and workers are rows with an expiry time on the
backend's clock; the write lock a transaction takes at ``BEGIN IMMEDIATE`` makes
each count-then-take atomic across processes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from offload import event_data as ed
from offload.backends.base import pause_order
from offload.backends.sqlite import _rows
from offload.backends.sqlite._rows import Row, dumps, micros, now_us, opt_us, us
from offload.backends.sqlite._sql import Q, batch_list
from offload.job import Batch, NewBatch, Pause, Schedule, WorkerInfo
from offload.lifecycle import EventKind

# pauses ------------------------------------------------------------------------------


def pause(conn: sqlite3.Connection, tenant: str | None, queue: str | None) -> Pause:
    """Idempotent: a scope already paused keeps the time it was first paused
    and records no second ``paused`` event."""
    now = now_us()
    if conn.execute(Q["pause_insert"], (tenant, queue, now)).rowcount:
        _control_event(
            conn, ed.pause_tenant(tenant), EventKind.PAUSED, ed.scope(tenant, queue), now
        )
    row = conn.execute(Q["pause_select"], (tenant, queue)).fetchone()
    return Pause(row[0], row[1], _rows.dt(row[2]))


def resume(conn: sqlite3.Connection, tenant: str | None, queue: str | None) -> bool:
    lifted: int = conn.execute(Q["pause_delete"], (tenant, queue)).rowcount
    if lifted:
        _control_event(conn, ed.pause_tenant(tenant), EventKind.RESUMED, ed.scope(tenant, queue),
                       now_us())  # fmt: skip
    return lifted > 0


def _control_event(conn: sqlite3.Connection, tenant: str, kind: EventKind,
                   data: dict[str, Any], at: int) -> None:  # fmt: skip
    conn.execute(Q["control_event_insert"], (tenant, kind.value, at, dumps(data)))


def pauses(conn: sqlite3.Connection, tenant: str | None) -> list[Pause]:
    if tenant is None:
        rows = conn.execute(Q["pause_list"])
    else:
        rows = conn.execute(Q["pause_list_of_tenant"], (tenant,))
    return sorted((Pause(t, q, _rows.dt(at)) for t, q, at in rows), key=pause_order)


# schedules ---------------------------------------------------------------------------


def schedule_upsert(conn: sqlite3.Connection, s: Schedule) -> Schedule:
    params = {
        "id": s.id, "task": s.task, "payload": s.payload, "cron": s.cron,
        "next_run_at": opt_us(s.next_run_at), "tenant": s.tenant, "timezone": s.timezone,
        "queue": s.queue, "priority": s.priority, "max_attempts": s.max_attempts,
        "timeout": s.timeout, "is_unique": int(s.unique), "now": now_us(), "meta": dumps(s.meta),
        "description": s.description,
    }  # fmt: skip
    return _rows.schedule(conn.execute(Q["schedule_upsert"], params).fetchone())


def schedules(conn: sqlite3.Connection, name: str, params: Row) -> list[Schedule]:
    return [_rows.schedule(r) for r in conn.execute(Q[name], params)]


def schedule_delete(conn: sqlite3.Connection, schedule_id: str, tenant: str) -> bool:
    deleted: int = conn.execute(Q["schedule_delete"], (tenant, schedule_id)).rowcount
    return deleted > 0


def schedule_advance(
    conn: sqlite3.Connection,
    schedule_id: str,
    tenant: str,
    expected: datetime,
    next_run_at: datetime | None,
    job_id: str | None,
) -> bool:
    params = {
        "id": schedule_id, "tenant": tenant, "expected": us(expected),
        "next": opt_us(next_run_at), "job": job_id,
    }  # fmt: skip
    advanced: int = conn.execute(Q["schedule_advance"], params).rowcount
    return advanced > 0


# batches -----------------------------------------------------------------------------


def batch_create(conn: sqlite3.Connection, new: NewBatch) -> Batch:
    """An id already stored is left as it is and handed back, jobs counted."""
    row = (new.id, new.tenant, now_us(), new.name, new.then, dumps(new.meta))
    conn.execute(Q["batch_insert"], row)
    return _rows.batch(conn.execute(Q["batch_get"], (new.id, None)).fetchone())


def batch_get(conn: sqlite3.Connection, batch_id: str, tenant: str | None) -> Batch | None:
    row = conn.execute(Q["batch_get"], (batch_id, tenant)).fetchone()
    return None if row is None else _rows.batch(row)


def batches(
    conn: sqlite3.Connection,
    tenant: str | None,
    unfinished: bool,
    before_id: str | None,
    limit: int,
) -> list[Batch]:
    sql = batch_list((tenant is not None, unfinished, before_id is not None))
    params = [v for v in (tenant, before_id) if v is not None]
    return [_rows.batch(r) for r in conn.execute(sql, (*params, limit))]


def batch_finish(conn: sqlite3.Connection, batch_id: str, continuation_ids: Sequence[str]) -> bool:
    now = now_us()
    params = (now, json.dumps(list(continuation_ids)), batch_id)
    row = conn.execute(Q["batch_finish"], params).fetchone()
    if row is None:
        return False
    data = ed.batch_finished(batch_id, continuation_ids)
    _control_event(conn, row[0], EventKind.BATCH_FINISHED, data, now)
    return True


def batch_purge(conn: sqlite3.Connection, finished_before: datetime) -> int:
    purged: int = conn.execute(Q["batch_purge"], (us(finished_before),)).rowcount
    return purged


# limits shared by every worker -------------------------------------------------------


def limit_acquire(conn: sqlite3.Connection, key: str, holder: str, limit: int, hold_for: float
                  ) -> bool:  # fmt: skip
    """Count, then take: the write lock held since BEGIN IMMEDIATE keeps any
    other process from taking a slot in between."""
    now = now_us()
    until = now + micros(hold_for)
    conn.execute(Q["slots_expire"], (now,))
    if conn.execute(Q["slot_renew"], (until, key, holder)).rowcount:
        return True
    held: int = conn.execute(Q["slots_held"], (key,)).fetchone()[0]
    if held >= limit:
        return False
    conn.execute(Q["slot_insert"], (key, holder, until))
    return True


def limit_release(conn: sqlite3.Connection, key: str, holder: str) -> None:
    conn.execute(Q["slot_release"], (key, holder))


def rate_acquire(conn: sqlite3.Connection, key: str, limit: int, period: float) -> float:
    """Count, then record, under the write lock like ``limit_acquire``."""
    now = now_us()
    window = micros(period)
    conn.execute(Q["rates_expire"], (now,))
    conn.execute(Q["rate_forget"], (key, now - window))
    admitted: int = conn.execute(Q["rate_admitted"], (key,)).fetchone()[0]
    if admitted < limit:
        conn.execute(Q["rate_insert"], (key, now, now + window))
        return 0.0
    row = conn.execute(Q["rate_blocking"], (key, max(limit - 1, 0))).fetchone()
    if row is None:  # a limit below one admits nothing, ever
        return float(period)
    blocking: int = row[0]
    return max(0.0, (blocking + window - now) / 1_000_000)


# the worker registry -----------------------------------------------------------------


def worker_beat(conn: sqlite3.Connection, info: WorkerInfo, ttl: float) -> None:
    """A beat is a write anyway, so it is where workers that went silent are
    forgotten; listings only filter them out."""
    now = now_us()
    conn.execute(Q["workers_expire"], (now,))
    conn.execute(Q["worker_beat"], (
        info.id, info.hostname, info.pid, json.dumps(list(info.queues)), info.concurrency,
        us(info.started_at), json.dumps(list(info.job_ids)), now, dumps(info.meta),
        now + micros(ttl),
    ))  # fmt: skip


def workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    return [_rows.worker(r) for r in conn.execute(Q["worker_list"], (now_us(),))]


def worker_remove(conn: sqlite3.Connection, worker_id: str) -> None:
    conn.execute(Q["worker_remove"], (worker_id,))
