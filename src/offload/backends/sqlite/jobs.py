"""Jobs and their events: the work done on the connection's thread, each
function one call inside one write transaction (or one autocommit read).

Every state change goes through ``apply``: the statement ``_sql.transition``
rendered from the transition's effect fields, then its events, whose data is
what the caller handed in (built by ``offload.event_data``) plus the
transition's stamps, which the statement itself returns as JSON (``_sql.stamps``,
the SQL twin of ``event_data.stamped``, costs SQLite a microsecond where
building and dumping a dict per leased job cost Python five). The bulk paths
(enqueue, lease, complete) use the same statements, batched.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.base import QueueCounts
from offload.backends.sqlite import _rows
from offload.backends.sqlite._rows import Row, dumps, now_us
from offload.backends.sqlite._sql import KEY_FREE, LEASE_TOKEN, TENANT, Q, job_list, transition
from offload.job import (
    Cancellation,
    CancelOutcome,
    DayCount,
    ErrorInfo,
    Event,
    HeartbeatReply,
    Job,
    JobQuery,
    Lease,
    NewJob,
)
from offload.lifecycle import EventKind, State, Transition

_KINDS = {t: tuple(k.value for k in t.events) for t in lc.ALL}


def event_data(handed: Mapping[str, Any], stamps: str) -> str:
    """The data of a transition's events as stored: what the caller handed in,
    then the stamps the statement returned (they win, as in ``ed.stamped``)."""
    if not handed:
        return stamps
    if stamps == "{}":
        return dumps(dict(handed))
    return dumps(dict(handed) | json.loads(stamps))


def _append(conn: sqlite3.Connection, t: Transition, job_id: str, tenant: str, now: int,
            data: str) -> None:  # fmt: skip
    conn.executemany(Q["event_insert"], [(job_id, tenant, k, now, data) for k in _KINDS[t]])


def apply(
    conn: sqlite3.Connection,
    t: Transition,
    params: dict[str, Any],
    handed: Mapping[str, Any],
    guard: str = "",
) -> Job | None:
    """Apply ``t`` to the job ``params["id"]`` and append its events, or change
    nothing and return ``None`` when its guards refuse. ``params`` holds what
    the statement binds (``now``, ``token``, ``span``, ``error``, ...) and
    ``worker``: the worker whose lease ``t`` grants or takes away (the row no
    longer names it after a DROP), required when ``t`` stamps it."""
    row: Row | None = conn.execute(transition(t, guard), params).fetchone()
    if row is None:
        return None
    _append(conn, t, row[0], row[3], params["now"], event_data(handed, row[-1]))
    return _rows.job(row)


def _leased(lease: Lease, now: int, **values: Any) -> dict[str, Any]:
    return {"id": lease.job_id, "token": lease.token, "now": now, **values}


# enqueue -----------------------------------------------------------------------------


def enqueue_many(conn: sqlite3.Connection, news: Sequence[NewJob]) -> list[Job]:
    now = now_us()
    last: int = conn.execute(Q["job_last_rowid"]).fetchone()[0]
    if any(new.unique_key is not None for new in news):
        jobs = [_enqueue_one(conn, new, now) for new in news]
    else:
        rows, jobs = _prepare(news, now)
        before = conn.total_changes
        conn.executemany(Q["job_insert"], rows)
        if conn.total_changes - before != len(rows):
            jobs = _stored_in_place(conn, jobs, last)
    conn.execute(Q["job_enqueue_events"], {"last": last})
    return jobs


def _stored_in_place(conn: sqlite3.Connection, jobs: list[Job], last: int) -> list[Job]:
    """After a bulk insert that skipped ids already stored: each job asked for
    whose row was not inserted now is handed back as stored, marked duplicate
    (the first of two equal ids in one call is the one inserted)."""
    inserted = {r[0] for r in conn.execute(Q["job_ids_after"], (last,))}
    out = []
    for job in jobs:
        if job.id in inserted:
            inserted.discard(job.id)
            out.append(job)
        else:
            out.append(_duplicate(conn, job))
    return out


def _duplicate(conn: sqlite3.Connection, job: Job) -> Job:
    """The job stored under ``job``'s id (an earlier enqueue's, on a repeat)."""
    row = conn.execute(Q["job_select"], (job.id, None)).fetchone()
    stored = _rows.job(row) if row is not None else job
    stored.duplicate = True
    return stored


def _enqueue_one(conn: sqlite3.Connection, new: NewJob, now: int) -> Job:
    """The path for unique keys: the live holder of the key, if any, wins; the
    write lock held since BEGIN IMMEDIATE makes check-then-insert atomic."""
    if new.unique_key is not None:
        row = conn.execute(Q["job_select_live_unique"], (new.tenant, new.unique_key)).fetchone()
        if row is not None:
            holder = _rows.job(row)
            holder.duplicate = True
            return holder
    rows, jobs = _prepare((new,), now)
    inserted = conn.execute(Q["job_insert"], rows[0]).rowcount
    return jobs[0] if inserted else _duplicate(conn, jobs[0])


# (state as stored, state) of a job due now and of one due later
_NOW = (lc.ENQUEUE.target.value, lc.ENQUEUE.target)
_LATER = (lc.ENQUEUE_LATER.target.value, lc.ENQUEUE_LATER.target)


def _prepare(news: Iterable[NewJob], now: int) -> tuple[list[Row], list[Job]]:
    """Rows to insert and the jobs to hand back, built in one pass; this loop is
    the cost of a bulk enqueue, so everything that can be is hoisted out of it."""
    rows: list[Row] = []
    jobs: list[Job] = []
    created = _rows.dt(now)
    for new in news:
        run = _run_at(new, now)
        value, state = _LATER if run > now else _NOW
        meta = dumps(new.meta)
        rows.append((
            new.id, new.task, new.queue, new.tenant, value, new.payload, new.priority,
            new.max_attempts, now, run, new.timeout, new.unique_key, new.batch_id, meta,
        ))  # fmt: skip
        jobs.append(Job(
            new.id, new.task, new.queue, new.tenant, state, new.payload, new.priority, 0,
            new.max_attempts, created, created if run == now else _rows.dt(run), new.timeout,
            unique_key=new.unique_key, batch_id=new.batch_id, meta=_rows.loads(meta),
        ))  # fmt: skip
    return rows, jobs


def _run_at(new: NewJob, now: int) -> int:
    if new.run_at is not None:
        return _rows.us(new.run_at)
    return now + _rows.micros(new.delay) if new.delay else now


# lease and the leased transitions ----------------------------------------------------


def lease(
    conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
) -> list[Job]:
    """START up to ``limit`` jobs, one statement per queue in the worker's
    order: per queue the leasing index is already in lease order, so each
    statement reads only the rows it takes however long the backlog is (plus,
    while a tenant is paused, that tenant's rows it steps over). The pauses are
    read in the same write transaction, so a pause committed before it is seen."""
    now = now_us()
    params = {"worker": worker_id, "now": now, "span": _rows.micros(lease_for)}
    pauses: list[tuple[str | None, str | None]] = conn.execute(Q["pause_scopes"]).fetchall()
    rows: list[Row] = []
    for queue in dict.fromkeys(queues):
        if len(rows) >= limit:
            break
        sql, extra = Q["job_lease"], {}
        if pauses:
            tenants = {tenant for tenant, paused in pauses if paused is None or paused == queue}
            if None in tenants:
                continue  # every tenant of this queue is paused
            if tenants:
                sql, extra = Q["job_lease_skipping"], {"paused": json.dumps(list(tenants))}
        taken = conn.execute(sql, params | extra | {"queue": queue, "limit": limit - len(rows)})
        rows.extend(sorted(taken.fetchall(), key=_lease_order))
    events = [(r[0], r[3], kind, now, r[-1]) for r in rows for kind in _KINDS[lc.START]]
    conn.executemany(Q["event_insert"], events)
    return [_rows.job(r) for r in rows]


def _lease_order(row: Row) -> tuple[int, int, str]:
    """RETURNING gives no order; this restores (priority desc, run_at, id)."""
    return (-row[6], row[10], row[0])


def heartbeat(conn: sqlite3.Connection, leases: Sequence[Lease], lease_for: float
              ) -> HeartbeatReply:  # fmt: skip
    expires = now_us() + _rows.micros(lease_for)
    lost: set[str] = set()
    cancel: set[str] = set()
    for held in leases:
        row = conn.execute(Q["job_heartbeat"], (expires, held.job_id, held.token)).fetchone()
        if row is None:
            lost.add(held.job_id)
        elif row[0]:
            cancel.add(held.job_id)
    return HeartbeatReply(frozenset(lost), frozenset(cancel))


# SUCCEED returns only what its events need: the hot path decodes no job.
_SUCCEED = transition(lc.SUCCEED, returning="tenant")


def complete_many(conn: sqlite3.Connection, items: Sequence[tuple[Lease, bytes | None]]
                  ) -> list[bool]:  # fmt: skip
    now = now_us()
    flags: list[bool] = []
    events: list[Row] = []
    for held, result in items:
        row = conn.execute(_SUCCEED, _leased(held, now, result=result)).fetchone()
        flags.append(row is not None)
        if row is not None:
            kinds = _KINDS[lc.SUCCEED]
            events.extend((held.job_id, row[0], kind, now, row[1]) for kind in kinds)
    conn.executemany(Q["event_insert"], events)
    return flags


def fail(conn: sqlite3.Connection, held: Lease, error: ErrorInfo, retry_in: float | None
         ) -> Job | None:  # fmt: skip
    t = lc.FAIL if retry_in is None else lc.RETRY
    params = _leased(held, now_us(), error=_rows.error_json(error), span=_span(retry_in))
    return apply(conn, t, params, ed.failure(error))


def _span(seconds: float | None) -> int:
    return 0 if seconds is None else _rows.micros(seconds)


def reject(conn: sqlite3.Connection, held: Lease, error: ErrorInfo) -> Job | None:
    params = _leased(held, now_us(), error=_rows.error_json(error))
    return apply(conn, lc.REJECT, params, ed.failure(error))


def discard(conn: sqlite3.Connection, held: Lease, error: ErrorInfo, ran: bool) -> Job | None:
    params = _leased(held, now_us(), error=_rows.error_json(error))
    return apply(conn, lc.DISCARD if ran else lc.DISCARD_REJECTED, params, ed.failure(error))


def requeue(conn: sqlite3.Connection, held: Lease, checkpoint: bytes | None) -> Job | None:
    return apply(conn, lc.REQUEUE, _leased(held, now_us(), checkpoint=checkpoint), {})


def snooze(conn: sqlite3.Connection, held: Lease, delay: float, reason: str) -> Job | None:
    params = _leased(held, now_us(), span=_rows.micros(delay))
    return apply(conn, lc.SNOOZE, params, ed.snoozed(delay, reason))


def cancel_confirm(conn: sqlite3.Connection, held: Lease) -> Job | None:
    return apply(conn, lc.CANCEL_RUNNING, _leased(held, now_us()), {})


def save_progress(
    conn: sqlite3.Connection,
    held: Lease,
    checkpoint: bytes | None,
    progress: float | None,
    message: str | None,
) -> bool:
    params = {"id": held.job_id, "token": held.token, "checkpoint": checkpoint}
    row = conn.execute(Q["job_progress"], params | {"progress": progress, "message": message})
    tenant = row.fetchone()
    if tenant is None:
        return False
    if progress is not None:
        data = dumps(ed.progress(progress, message))
        conn.execute(
            Q["event_insert"], (held.job_id, tenant[0], EventKind.PROGRESS.value, now_us(), data)
        )
    return True


# transitions asked for from outside --------------------------------------------------


def cancel(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> Cancellation | None:
    """Cancel a waiting job, else ask a running one to stop (the request
    recorded once), else hand back the job as it ended."""
    now = now_us()
    params = {"id": job_id, "tenant": tenant, "now": now}
    job = apply(conn, lc.CANCEL_WAITING, params, {}, TENANT)
    if job is not None:
        return Cancellation(job, CancelOutcome.CANCELLED)
    row = conn.execute(Q["job_request_cancel"], params).fetchone()
    if row is not None:
        kind = EventKind.CANCEL_REQUESTED.value
        conn.execute(Q["event_insert"], (row[0], row[3], kind, now, dumps({})))
        return Cancellation(_rows.job(row), CancelOutcome.REQUESTED)
    job = get(conn, job_id, tenant)
    if job is None:
        return None
    running = job.state is State.RUNNING  # asked before: still a request
    return Cancellation(job, CancelOutcome.REQUESTED if running else CancelOutcome.ENDED)


def redrive(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> Job | None:
    return apply(conn, lc.REDRIVE, {"id": job_id, "tenant": tenant, "now": now_us()}, {}, KEY_FREE)


def release(
    conn: sqlite3.Connection, job_id: str, t: Transition, data: Mapping[str, Any]
) -> Job | None:
    """RELEASE or CANCEL_DEPENDENT a dependent still waiting (see ``Backend.job_release``)."""
    return apply(conn, t, {"id": job_id, "tenant": None, "now": now_us()}, data, TENANT)


_EXPIRED_ERROR = _rows.error_json(ed.LEASE_EXPIRED)


def recover_expired(conn: sqlite3.Connection) -> list[Job]:
    """EXPIRE, EXPIRE_DEAD on the last attempt (EXPIRE_DISCARD for a task
    without dead letter), or EXPIRE_CANCELLED when a cancel
    was asked for, each lease that ran out; the
    worker that held it is read with it, under the same write lock."""
    now = now_us()
    out: list[Job] = []
    rows = conn.execute(Q["job_select_expired"], (now,)).fetchall()
    for job_id, token, worker, last, cancel, discard in rows:
        params = {"id": job_id, "token": token, "now": now, "worker": worker}
        if cancel:
            job = apply(conn, lc.EXPIRE_CANCELLED, params, {}, LEASE_TOKEN)
        elif last:
            t = lc.EXPIRE_DISCARD if discard else lc.EXPIRE_DEAD
            job = apply(conn, t, params | {"error": _EXPIRED_ERROR}, {}, LEASE_TOKEN)
        else:
            job = apply(conn, lc.EXPIRE, params, {}, LEASE_TOKEN)
        if job is not None:
            out.append(job)
    return out


# reads and maintenance ---------------------------------------------------------------


def get(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> Job | None:
    row = conn.execute(Q["job_select"], (job_id, tenant)).fetchone()
    return None if row is None else _rows.job(row)


def list_jobs(conn: sqlite3.Connection, q: JobQuery) -> list[Job]:
    states = None if q.states is None else json.dumps(sorted(q.states))
    given = (q.tenant, states, q.queue, q.task, q.before_id, q.batch_id)
    sql = job_list(tuple(v is not None for v in given))
    params = [v for v in given if v is not None]
    return [_rows.job(r) for r in conn.execute(sql, (*params, q.limit))]


def counts(conn: sqlite3.Connection, tenant: str | None) -> QueueCounts:
    if tenant is None:
        rows = conn.execute(Q["job_counts"])
    else:
        rows = conn.execute(Q["job_counts_of_tenant"], (tenant,))
    return {(queue, _rows.STATE[state]): n for queue, state, n in rows}


def purge(conn: sqlite3.Connection, before: datetime, states: Sequence[State]) -> int:
    params = {"before": _rows.us(before), "states": json.dumps([State(s).value for s in states])}
    conn.execute(Q["job_purge_stats"], params)
    conn.execute(Q["job_purge_events"], params)
    conn.execute(Q["control_events_purge"], params)
    deleted: int = conn.execute(Q["job_purge"], params).rowcount
    return deleted


def stats(conn: sqlite3.Connection, tenant: str | None, queue: str | None) -> list[DayCount]:
    rows = conn.execute(Q["job_stats"], {"tenant": tenant, "queue": queue})
    return [DayCount(q, date.fromisoformat(d), _rows.STATE[s], n) for q, d, s, n in rows]


def cancels(conn: sqlite3.Connection, job_ids: Sequence[str]) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute(Q["job_cancels"], (json.dumps(list(job_ids)),)))


def event_last_id(conn: sqlite3.Connection) -> int:
    """MAX of the primary key: one read of the index's last entry."""
    found: int = conn.execute(Q["event_last_id"]).fetchone()[0]
    return found


def events(conn: sqlite3.Connection, name: str, params: Row) -> list[Event]:
    return [_rows.event(r) for r in conn.execute(Q[name], params)]
