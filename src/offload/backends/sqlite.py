"""The embedded default backend: one SQLite file, shared by any number of processes.

Why it is built the way it is:

* ``sqlite3`` connections are not meant to hop threads, and a query must never
  block the event loop, so each instance owns one connection living on one
  dedicated thread; every contract method is one call into that thread running
  one transaction.
* WAL lets readers go on while one writer writes; ``BEGIN IMMEDIATE`` takes the
  write lock before the first read of a write transaction, so worker processes
  sharing the file queue up on ``busy_timeout`` instead of deadlocking on a lock
  upgrade, and two of them can never lease the same job.
* ``synchronous=NORMAL`` in WAL mode survives a crash of the process (``kill -9``);
  ``?synchronous=full`` in the URL adds survival of a power loss at some speed.
* Timestamps are stored as integer microseconds since the Unix epoch: exact (a
  ``datetime`` read back equals the one written), compact, and ordered.
* The state names inside SQL come from ``offload.lifecycle`` when this module is
  imported, so the guards in the ``WHERE`` clauses cannot drift from the table.
* SQLite cannot push between processes: waiters in this process are woken by
  writes of this process, and a commit of another process is noticed by
  watching the WAL index: its header (the first bytes of the ``-shm`` file,
  whose layout SQLite documents) changes with every commit, and reading it is
  one ``pread`` on the event loop. On Linux an inotify watch on the ``-wal``
  file (every commit appends to it) says when to read it, so a waiter wakes
  within a millisecond and costs nothing while nothing happens; elsewhere the
  header is read every ``cross_process_poll`` seconds, cheap enough for a few
  milliseconds. A change is confirmed with ``PRAGMA data_version``, which
  ignores this connection's own commits. Where there is no WAL index to read,
  ``data_version`` itself is polled, less often, since each read is a round
  trip to the connection's thread.
* Concurrency slots, rate windows and the worker registry are rows with an
  expiry time on the backend's clock; the write lock that makes a lease atomic
  makes an acquire's count-then-take atomic too, across processes.
* Pauses live in a table that is almost always empty; a lease reads it inside its
  own write transaction and adds a tenant filter only for the queues a pause
  touches, so the common lease statement stays exactly the unpaused one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlsplit

from offload import lifecycle as lc
from offload.backends.base import Backend, QueueCounts, pause_order
from offload.errors import BackendError, ConfigurationError
from offload.job import (
    Batch,
    ErrorInfo,
    Event,
    HeartbeatReply,
    Job,
    JobQuery,
    Lease,
    NewBatch,
    NewJob,
    Pause,
    Schedule,
    WorkerInfo,
)
from offload.lifecycle import EventKind, State, Transition

try:  # Linux only; without it, waits fall back to a short poll of the header
    from inotify_simple import INotify
    from inotify_simple import flags as inotify_flags
except ImportError:  # pragma: no cover - depends on the platform
    INotify = None

P = ParamSpec("P")
T = TypeVar("T")
Row = tuple[Any, ...]

# time ------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _now_us() -> int:
    return time.time_ns() // 1000


def _us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICRO


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _opt_dt(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


# schema --------------------------------------------------------------------------


def _states(states: Iterable[State]) -> str:
    """An SQL list literal of state names, for guards and partial indexes."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


_LEASABLE = _states(lc.START.sources)
_RUNNING = _states(lc.CANCEL_RUNNING.sources)
_ENDED = _states(lc.ENDED)

# Column order follows ``Job`` so that a row reads like the dataclass.
_COLUMNS = (
    "id, task, queue, tenant, state, payload, priority, attempts, max_attempts, "
    "created_at, run_at, timeout, started_at, finished_at, result, error, checkpoint, "
    "progress, progress_message, unique_key, batch_id, worker_id, lease_token, "
    "lease_expires_at, cancel_requested, meta"
)

# Each entry moves the schema one version up; ``PRAGMA user_version`` records how
# many have been applied, so opening an older file upgrades it in place.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            task TEXT NOT NULL,
            queue TEXT NOT NULL,
            tenant TEXT NOT NULL,
            state TEXT NOT NULL,
            payload BLOB NOT NULL,
            priority INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            run_at INTEGER NOT NULL,
            timeout REAL,
            started_at INTEGER,
            finished_at INTEGER,
            result BLOB,
            error TEXT,
            checkpoint BLOB,
            progress REAL,
            progress_message TEXT,
            unique_key TEXT,
            batch_id TEXT,
            worker_id TEXT,
            lease_token TEXT,
            lease_expires_at INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            meta TEXT NOT NULL DEFAULT '{}'
        )""",
        # Only waiting jobs are in the leasing index: it stays small however many
        # ended jobs the table keeps, and its order is the lease order.
        f"""CREATE INDEX IF NOT EXISTS jobs_lease
            ON jobs (queue, priority DESC, run_at, id) WHERE state IN {_LEASABLE}""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON jobs (tenant, unique_key)
            WHERE unique_key IS NOT NULL AND state NOT IN {_ENDED}""",
        f"""CREATE INDEX IF NOT EXISTS jobs_running
            ON jobs (lease_expires_at) WHERE state IN {_RUNNING}""",
        """CREATE INDEX IF NOT EXISTS jobs_finished
            ON jobs (finished_at) WHERE finished_at IS NOT NULL""",
        # One index serves counts (it covers queue and state) and listings by
        # tenant and state in id order. Each index costs every enqueue several
        # per cent, so listings without a tenant scan the table in id order.
        "CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, state, id, queue)",
        # AUTOINCREMENT: an id is never reused after a purge, so a feed cursor
        # held by a dashboard never skips or repeats an event.
        """CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL,
            at INTEGER NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS events_job ON events (job_id, id)",
    ),
    (
        # A NULL tenant or queue is the wildcard of ``Pause``. UNIQUE treats NULLs
        # as distinct, so the scope is made unique through expressions that tell
        # NULL apart from every string, the empty one included.
        """CREATE TABLE IF NOT EXISTS pauses (
            tenant TEXT,
            queue TEXT,
            at INTEGER NOT NULL
        )""",
        """CREATE UNIQUE INDEX IF NOT EXISTS pauses_scope ON pauses
            (tenant IS NULL, ifnull(tenant, ''), queue IS NULL, ifnull(queue, ''))""",
        # ``unique`` and ``then`` are SQL keywords, hence ``is_unique`` and ``then_jobs``.
        """CREATE TABLE IF NOT EXISTS schedules (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            task TEXT NOT NULL,
            payload BLOB NOT NULL,
            cron TEXT NOT NULL,
            next_run_at INTEGER,
            timezone TEXT NOT NULL,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            timeout REAL,
            is_unique INTEGER NOT NULL,
            last_run_at INTEGER,
            last_job_id TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (tenant, id)
        )""",
        # Schedules that fire no more stay out of the index the scheduler polls.
        """CREATE INDEX IF NOT EXISTS schedules_due
            ON schedules (next_run_at, tenant, id) WHERE next_run_at IS NOT NULL""",
        """CREATE TABLE IF NOT EXISTS batches (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            name TEXT,
            then_jobs BLOB,
            finished_at INTEGER,
            continuation_ids TEXT NOT NULL DEFAULT '[]',
            meta TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS batches_tenant ON batches (tenant, id)",
        # Counts of a batch are read from its jobs; partial, so that jobs outside
        # any batch (most of them) cost their enqueue nothing here.
        """CREATE INDEX IF NOT EXISTS jobs_batch
            ON jobs (batch_id, state) WHERE batch_id IS NOT NULL""",
    ),
    (
        # One row per slot held; a slot given back is deleted, one whose holder
        # crashed is deleted by the first acquire after its ``until``.
        """CREATE TABLE IF NOT EXISTS limit_slots (
            key TEXT NOT NULL,
            holder TEXT NOT NULL,
            until INTEGER NOT NULL,
            PRIMARY KEY (key, holder)
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS limit_slots_until ON limit_slots (until)",
        # One row per admitted start. ``until`` is when the start leaves the window
        # it was admitted under, so the starts of a key nobody asks about again
        # are cleaned up too and the table stays as small as the open windows.
        """CREATE TABLE IF NOT EXISTS rate_starts (
            key TEXT NOT NULL,
            at INTEGER NOT NULL,
            until INTEGER NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS rate_starts_key ON rate_starts (key, at)",
        "CREATE INDEX IF NOT EXISTS rate_starts_until ON rate_starts (until)",
        # A handful of rows, one per live worker: scanned, never indexed.
        """CREATE TABLE IF NOT EXISTS workers (
            id TEXT PRIMARY KEY,
            hostname TEXT NOT NULL,
            pid INTEGER NOT NULL,
            queues TEXT NOT NULL,
            concurrency INTEGER NOT NULL,
            started_at INTEGER NOT NULL,
            job_ids TEXT NOT NULL,
            last_seen_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}'
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

# statements ------------------------------------------------------------------------

# OR IGNORE: an id that is already stored is not written again (a retried
# enqueue is then harmless); the caller gets the stored job back.
_INSERT_JOB = (
    "INSERT OR IGNORE INTO jobs (id, task, queue, tenant, state, payload, priority, attempts, "
    "max_attempts, created_at, run_at, timeout, unique_key, batch_id, meta) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"
)
_LAST_ROWID = "SELECT coalesce(max(rowid), 0) FROM jobs"


def _enqueue_events_sql(enqueues: Sequence[Transition]) -> str:
    """One INSERT … SELECT that appends the events of every job inserted after
    rowid ``:last``, each job's kinds in order: SQLite builds these rows faster
    than Python can bind them, which matters on the bulk enqueue path."""
    selects = []
    for position in range(max(len(t.events) for t in enqueues)):
        whens = " ".join(
            f"WHEN '{t.target.value}' THEN '{t.events[position].value}'"
            for t in enqueues
            if position < len(t.events)
        )
        selects.append(
            f"SELECT rowid AS r, {position} AS p, id, tenant, CASE state {whens} END AS kind, "
            "created_at FROM jobs WHERE rowid > :last"
        )
    return (
        "INSERT INTO events (job_id, tenant, kind, at) SELECT id, tenant, kind, created_at "
        f"FROM ({' UNION ALL '.join(selects)}) WHERE kind IS NOT NULL ORDER BY r, p"
    )


_ENQUEUE_EVENTS = _enqueue_events_sql((lc.ENQUEUE, lc.ENQUEUE_LATER))
_INSERT_EVENT = "INSERT INTO events (job_id, tenant, kind, at, data) VALUES (?, ?, ?, ?, ?)"
_SELECT_JOB = f"SELECT {_COLUMNS} FROM jobs WHERE id = ? AND tenant = COALESCE(?, tenant)"
_SELECT_LIVE_UNIQUE = (
    f"SELECT {_COLUMNS} FROM jobs WHERE tenant = ? AND unique_key = ? AND state NOT IN {_ENDED}"
)


def _lease_sql(guard: str) -> str:
    return (
        f"UPDATE jobs SET state = '{lc.START.target.value}', attempts = attempts + 1, "
        "worker_id = :worker, lease_token = lower(hex(randomblob(16))), "
        "lease_expires_at = :expires, started_at = :now "
        "WHERE rowid IN (SELECT rowid FROM jobs "
        f"WHERE queue = :queue AND state IN {_LEASABLE} AND run_at <= :now{guard} "
        "ORDER BY priority DESC, run_at, id LIMIT :limit) "
        f"RETURNING {_COLUMNS}"
    )


_LEASE = _lease_sql("")
# The filter sits in the scan of the leasing index, so paused tenants' jobs at
# the head of a queue are stepped over instead of starving the jobs behind them.
_LEASE_SKIPPING = _lease_sql(" AND tenant NOT IN (SELECT value FROM json_each(:paused))")
_PAUSES = "SELECT tenant, queue FROM pauses"
_CANCELS = (
    "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND cancel_requested = 1"
)
_HEARTBEAT = (
    "UPDATE jobs SET lease_expires_at = ? "
    f"WHERE id = ? AND state IN {_RUNNING} AND lease_token = ? RETURNING cancel_requested"
)
_PROGRESS = (
    "UPDATE jobs SET checkpoint = COALESCE(:checkpoint, checkpoint), "
    "progress = COALESCE(:progress, progress), "
    "progress_message = CASE WHEN :progress IS NULL THEN progress_message ELSE :message END "
    f"WHERE id = :id AND state IN {_RUNNING} AND lease_token = :token RETURNING tenant"
)
_REQUEST_CANCEL = (
    "UPDATE jobs SET cancel_requested = 1 WHERE id = :id AND tenant = COALESCE(:tenant, tenant) "
    f"AND state IN {_RUNNING} AND cancel_requested = 0 RETURNING {_COLUMNS}"
)
_SELECT_EXPIRED = (
    "SELECT id, lease_token, worker_id, attempts, attempts >= max_attempts FROM jobs "
    f"WHERE state IN {_RUNNING} AND lease_expires_at <= ?"
)
_COUNTS = "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
_COUNTS_OF_TENANT = "SELECT queue, state, count(*) FROM jobs WHERE tenant = ? GROUP BY queue, state"
_PURGE_SELECT = (
    "SELECT id FROM jobs INDEXED BY jobs_finished WHERE finished_at < :before "
    f"AND state IN {_ENDED} AND state IN (SELECT value FROM json_each(:states))"
)
_PURGE_EVENTS = f"DELETE FROM events WHERE job_id IN ({_PURGE_SELECT})"
_PURGE_JOBS = f"DELETE FROM jobs WHERE id IN ({_PURGE_SELECT})"
_EVENT_COLUMNS = "id, job_id, tenant, kind, at, data"
_EVENTS_OF_JOB = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?"
)
_LATEST_EVENT = f"SELECT {_EVENT_COLUMNS} FROM events WHERE job_id = ? ORDER BY id DESC LIMIT 1"
_FEED = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > ? AND tenant = COALESCE(?, tenant) "
    "ORDER BY id LIMIT ?"
)

_DROP_LEASE = "worker_id = NULL, lease_token = NULL, lease_expires_at = NULL, cancel_requested = 0"


def _transition_sql(t: Transition, sets: str, guard: str = "", returning: str = _COLUMNS) -> str:
    """One guarded UPDATE for ``t``: it matches only from ``t.sources`` and, for a
    leased transition, only under the caller's lease token."""
    fence = " AND lease_token = :token" if t.leased else ""
    return (
        f"UPDATE jobs SET state = '{t.target.value}', {sets} "
        f"WHERE id = :id AND state IN {_states(t.sources)}{fence}{guard} RETURNING {returning}"
    )


_TENANT_GUARD = " AND tenant = COALESCE(:tenant, tenant)"
# A redriven job would hold its unique key again; while another live job holds it,
# the redrive is refused rather than letting two live jobs share one key.
_KEY_FREE_GUARD = (
    " AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS other "
    "WHERE other.tenant = jobs.tenant AND other.unique_key = jobs.unique_key "
    f"AND other.state NOT IN {_ENDED}))"
)

_SQL: dict[Transition, str] = {
    lc.SUCCEED: _transition_sql(
        lc.SUCCEED, f"result = :result, finished_at = :now, {_DROP_LEASE}", returning="tenant"
    ),
    lc.RETRY: _transition_sql(lc.RETRY, f"error = :error, run_at = :run_at, {_DROP_LEASE}"),
    lc.FAIL: _transition_sql(lc.FAIL, f"error = :error, finished_at = :now, {_DROP_LEASE}"),
    lc.REJECT: _transition_sql(lc.REJECT, f"error = :error, finished_at = :now, {_DROP_LEASE}"),
    lc.REQUEUE: _transition_sql(
        lc.REQUEUE,
        "attempts = max(attempts - 1, 0), checkpoint = COALESCE(:checkpoint, checkpoint), "
        f"run_at = :now, {_DROP_LEASE}",
    ),
    lc.SNOOZE: _transition_sql(
        lc.SNOOZE, f"attempts = max(attempts - 1, 0), run_at = :run_at, {_DROP_LEASE}"
    ),
    lc.CANCEL_WAITING: _transition_sql(
        lc.CANCEL_WAITING, f"finished_at = :now, {_DROP_LEASE}", _TENANT_GUARD
    ),
    lc.CANCEL_RUNNING: _transition_sql(lc.CANCEL_RUNNING, f"finished_at = :now, {_DROP_LEASE}"),
    lc.EXPIRE: _transition_sql(
        lc.EXPIRE, f"run_at = :now, {_DROP_LEASE}", " AND lease_token = :token"
    ),
    lc.EXPIRE_DEAD: _transition_sql(
        lc.EXPIRE_DEAD,
        f"error = :error, finished_at = :now, {_DROP_LEASE}",
        " AND lease_token = :token",
    ),
    lc.REDRIVE: _transition_sql(
        lc.REDRIVE,
        f"attempts = 0, error = NULL, finished_at = NULL, run_at = :now, {_DROP_LEASE}",
        _TENANT_GUARD + _KEY_FREE_GUARD,
    ),
}

# Filters of ``job_list``, in the order their parameters are bound.
_LIST_FILTERS = (
    "tenant = ?",
    "state IN (SELECT value FROM json_each(?))",
    "queue = ?",
    "task = ?",
    "id < ?",
    "batch_id = ?",
)


@lru_cache(maxsize=64)  # every subset of the six filters
def _list_sql(present: tuple[bool, ...]) -> str:
    """The listing query with only the filters in use, so each can use its index."""
    where = " AND ".join(f for f, on in zip(_LIST_FILTERS, present, strict=True) if on)
    return (
        f"SELECT {_COLUMNS} FROM jobs {'WHERE ' + where if where else ''} ORDER BY id DESC LIMIT ?"
    )


# rows -> objects ---------------------------------------------------------------------

_STATE = {s.value: s for s in State}
_KIND = {k.value: k for k in EventKind}
_KINDS = {t: tuple(k.value for k in t.events) for t in lc.ALL}
_EXPIRED_ERROR = ErrorInfo("LeaseExpired", "lease expired on the last attempt")


def _job(r: Row) -> Job:
    return Job(
        id=r[0], task=r[1], queue=r[2], tenant=r[3], state=_STATE[r[4]], payload=r[5],
        priority=r[6], attempts=r[7], max_attempts=r[8], created_at=_dt(r[9]),
        run_at=_dt(r[10]), timeout=r[11], started_at=_opt_dt(r[12]),
        finished_at=_opt_dt(r[13]), result_data=r[14], error=_error(r[15]),
        checkpoint_data=r[16], progress=r[17], progress_message=r[18], unique_key=r[19],
        batch_id=r[20], worker_id=r[21], lease_token=r[22], lease_expires_at=_opt_dt(r[23]),
        cancel_requested=bool(r[24]), meta=_loads(r[25]),
    )  # fmt: skip


def _event(r: Row) -> Event:
    return Event(r[0], r[1], r[2], _KIND[r[3]], _dt(r[4]), _loads(r[5]))


def _error(text: str | None) -> ErrorInfo | None:
    return None if text is None else ErrorInfo.from_dict(json.loads(text))


def _loads(text: str) -> dict[str, Any]:
    if text == "{}":
        return {}
    value: dict[str, Any] = json.loads(text)
    return value


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":")) if data else "{}"


# the work done on the connection's thread, one transaction per call ----------------


def _append(
    conn: sqlite3.Connection, t: Transition, row: Row, now: int, data: dict[str, Any]
) -> None:
    """The events ``t`` records, for a row in ``_COLUMNS`` order."""
    text = _dumps(data)
    conn.executemany(_INSERT_EVENT, [(row[0], row[3], k, now, text) for k in _KINDS[t]])


def _update(conn: sqlite3.Connection, t: Transition, params: dict[str, Any]) -> Row | None:
    row: Row | None = conn.execute(_SQL[t], params).fetchone()
    return row


def _apply(
    conn: sqlite3.Connection, t: Transition, params: dict[str, Any], data: dict[str, Any]
) -> Job | None:
    """Run ``t``'s guarded UPDATE; append its events only when it matched."""
    row = _update(conn, t, params)
    if row is None:
        return None
    _append(conn, t, row, params["now"], data)
    return _job(row)


def _enqueue_many(conn: sqlite3.Connection, news: Sequence[NewJob]) -> list[Job]:
    now = _now_us()
    last: int = conn.execute(_LAST_ROWID).fetchone()[0]
    if any(new.unique_key is not None for new in news):
        jobs = [_enqueue_one(conn, new, now) for new in news]
    else:
        rows, jobs = _prepare(news, now)
        before = conn.total_changes
        conn.executemany(_INSERT_JOB, rows)
        if conn.total_changes - before != len(rows):
            jobs = [_stored(conn, job) for job in jobs]
    conn.execute(_ENQUEUE_EVENTS, {"last": last})
    return jobs


def _stored(conn: sqlite3.Connection, job: Job) -> Job:
    """The job as stored under ``job``'s id (an earlier enqueue's, on a repeat)."""
    row = conn.execute(_SELECT_JOB, (job.id, None)).fetchone()
    return _job(row) if row is not None else job


def _enqueue_one(conn: sqlite3.Connection, new: NewJob, now: int) -> Job:
    """The path for unique keys: the live holder of the key, if any, wins; the
    write lock held since BEGIN IMMEDIATE makes check-then-insert atomic."""
    if new.unique_key is not None:
        row = conn.execute(_SELECT_LIVE_UNIQUE, (new.tenant, new.unique_key)).fetchone()
        if row is not None:
            return _job(row)
    rows, jobs = _prepare((new,), now)
    inserted = conn.execute(_INSERT_JOB, rows[0]).rowcount
    return jobs[0] if inserted else _stored(conn, jobs[0])


# (state as stored, state) of a job due now and of one due later
_NOW = (lc.ENQUEUE.target.value, lc.ENQUEUE.target)
_LATER = (lc.ENQUEUE_LATER.target.value, lc.ENQUEUE_LATER.target)


def _prepare(news: Iterable[NewJob], now: int) -> tuple[list[Row], list[Job]]:
    """Rows to insert and the jobs to hand back, built in one pass; this loop is
    the cost of a bulk enqueue, so everything that can be is hoisted out of it."""
    rows: list[Row] = []
    jobs: list[Job] = []
    created = _dt(now)
    for new in news:
        run = _run_at(new, now)
        value, state = _LATER if run > now else _NOW
        meta = _dumps(new.meta)
        rows.append((
            new.id, new.task, new.queue, new.tenant, value, new.payload, new.priority,
            new.max_attempts, now, run, new.timeout, new.unique_key, new.batch_id, meta,
        ))  # fmt: skip
        jobs.append(Job(
            new.id, new.task, new.queue, new.tenant, state, new.payload, new.priority, 0,
            new.max_attempts, created, created if run == now else _dt(run), new.timeout,
            unique_key=new.unique_key, batch_id=new.batch_id, meta=_loads(meta),
        ))  # fmt: skip
    return rows, jobs


def _run_at(new: NewJob, now: int) -> int:
    if new.run_at is not None:
        return _us(new.run_at)
    return now + round(new.delay * 1_000_000) if new.delay else now


def _lease(
    conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
) -> list[Job]:
    """START up to ``limit`` jobs, one guarded UPDATE per queue in the worker's
    order: per queue the leasing index is already in lease order, so each UPDATE
    reads only the rows it takes however long the backlog is (plus, while a
    tenant is paused, that tenant's rows it steps over). The pauses are read in
    the same write transaction, so a pause committed before it is always seen."""
    now = _now_us()
    params = {"worker": worker_id, "now": now, "expires": now + round(lease_for * 1_000_000)}
    pauses: list[tuple[str | None, str | None]] = conn.execute(_PAUSES).fetchall()
    rows: list[Row] = []
    for queue in dict.fromkeys(queues):
        if len(rows) >= limit:
            break
        sql, extra = _LEASE, {}
        if pauses:
            tenants = {tenant for tenant, paused in pauses if paused is None or paused == queue}
            if None in tenants:
                continue  # every tenant of this queue is paused
            if tenants:
                sql, extra = _LEASE_SKIPPING, {"paused": json.dumps(list(tenants))}
        taken = conn.execute(sql, params | extra | {"queue": queue, "limit": limit - len(rows)})
        rows.extend(sorted(taken.fetchall(), key=_lease_order))
    worker = json.dumps(worker_id)
    events = [
        (r[0], r[3], kind, now, f'{{"attempt":{r[7]},"worker":{worker}}}')
        for r in rows
        for kind in _KINDS[lc.START]
    ]
    conn.executemany(_INSERT_EVENT, events)
    return [_job(r) for r in rows]


def _lease_order(row: Row) -> tuple[int, int, str]:
    """RETURNING gives no order; this restores (priority desc, run_at, id)."""
    return (-row[6], row[10], row[0])


def _heartbeat(
    conn: sqlite3.Connection, leases: Sequence[Lease], lease_for: float
) -> HeartbeatReply:
    expires = _now_us() + round(lease_for * 1_000_000)
    lost: set[str] = set()
    cancel: set[str] = set()
    for lease in leases:
        row = conn.execute(_HEARTBEAT, (expires, lease.job_id, lease.token)).fetchone()
        if row is None:
            lost.add(lease.job_id)
        elif row[0]:
            cancel.add(lease.job_id)
    return HeartbeatReply(frozenset(lost), frozenset(cancel))


def _complete_many(
    conn: sqlite3.Connection, items: Sequence[tuple[Lease, bytes | None]]
) -> list[bool]:
    now = _now_us()
    flags: list[bool] = []
    events: list[Row] = []
    sql, kinds = _SQL[lc.SUCCEED], _KINDS[lc.SUCCEED]
    for lease, result in items:
        params = {"id": lease.job_id, "token": lease.token, "result": result, "now": now}
        row = conn.execute(sql, params).fetchone()
        flags.append(row is not None)
        if row is not None:
            events.extend((lease.job_id, row[0], kind, now, "{}") for kind in kinds)
    conn.executemany(_INSERT_EVENT, events)
    return flags


def _fail(
    conn: sqlite3.Connection, lease: Lease, error: ErrorInfo, retry_in: float | None
) -> Job | None:
    now = _now_us()
    params = {"id": lease.job_id, "token": lease.token, "now": now, "error": _error_json(error)}
    t = lc.FAIL if retry_in is None else lc.RETRY
    if retry_in is not None:
        params["run_at"] = now + round(retry_in * 1_000_000)
    row = _update(conn, t, params)
    if row is None:
        return None
    data: dict[str, Any] = {"error": error.to_dict(), "attempt": row[7]}
    if retry_in is not None:
        data["run_at"] = _dt(row[10]).isoformat()
    _append(conn, t, row, now, data)
    return _job(row)


def _error_json(error: ErrorInfo) -> str:
    return json.dumps(error.to_dict(), separators=(",", ":"))


def _reject(conn: sqlite3.Connection, lease: Lease, error: ErrorInfo) -> Job | None:
    params = {"id": lease.job_id, "token": lease.token, "now": _now_us()}
    params["error"] = _error_json(error)
    return _apply(conn, lc.REJECT, params, {"error": error.to_dict()})


def _requeue(conn: sqlite3.Connection, lease: Lease, checkpoint: bytes | None) -> Job | None:
    params = {"id": lease.job_id, "token": lease.token, "now": _now_us()}
    return _apply(conn, lc.REQUEUE, params | {"checkpoint": checkpoint}, {})


def _snooze(conn: sqlite3.Connection, lease: Lease, delay: float, reason: str) -> Job | None:
    now = _now_us()
    params = {"id": lease.job_id, "token": lease.token, "now": now, "run_at": now + _micros(delay)}
    return _apply(conn, lc.SNOOZE, params, {"delay": delay, "reason": reason})


def _cancel(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> Job | None:
    """Cancel a waiting job, else ask a running one to stop (once), else hand
    back the job as it is."""
    now = _now_us()
    params = {"id": job_id, "tenant": tenant, "now": now}
    job = _apply(conn, lc.CANCEL_WAITING, params, {})
    if job is not None:
        return job
    row = conn.execute(_REQUEST_CANCEL, params).fetchone()
    if row is not None:
        conn.execute(_INSERT_EVENT, (row[0], row[3], EventKind.CANCEL_REQUESTED.value, now, "{}"))
        return _job(row)
    return _get(conn, job_id, tenant)


def _cancel_confirm(conn: sqlite3.Connection, lease: Lease) -> Job | None:
    params = {"id": lease.job_id, "token": lease.token, "now": _now_us()}
    return _apply(conn, lc.CANCEL_RUNNING, params, {})


def _save_progress(
    conn: sqlite3.Connection,
    lease: Lease,
    checkpoint: bytes | None,
    progress: float | None,
    message: str | None,
) -> bool:
    params = {"id": lease.job_id, "token": lease.token, "checkpoint": checkpoint}
    row = conn.execute(_PROGRESS, params | {"progress": progress, "message": message}).fetchone()
    if row is None:
        return False
    if progress is not None:
        data = _dumps({"progress": progress, "message": message})
        conn.execute(
            _INSERT_EVENT, (lease.job_id, row[0], EventKind.PROGRESS.value, _now_us(), data)
        )
    return True


def _redrive(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> Job | None:
    return _apply(conn, lc.REDRIVE, {"id": job_id, "tenant": tenant, "now": _now_us()}, {})


def _recover_expired(conn: sqlite3.Connection) -> list[Job]:
    now = _now_us()
    out: list[Job] = []
    for job_id, token, worker, attempts, last in conn.execute(_SELECT_EXPIRED, (now,)).fetchall():
        params = {"id": job_id, "token": token, "now": now}
        data = {"worker": worker, "attempt": attempts}
        if last:
            job = _apply(conn, lc.EXPIRE_DEAD, params | {"error": _EXPIRED_JSON}, data)
        else:
            job = _apply(conn, lc.EXPIRE, params, data)
        if job is not None:
            out.append(job)
    return out


_EXPIRED_JSON = _error_json(_EXPIRED_ERROR)


def _get(conn: sqlite3.Connection, job_id: str, tenant: str | None) -> Job | None:
    row = conn.execute(_SELECT_JOB, (job_id, tenant)).fetchone()
    return None if row is None else _job(row)


def _list(conn: sqlite3.Connection, q: JobQuery) -> list[Job]:
    states = None if q.states is None else json.dumps(sorted(q.states))
    given = (q.tenant, states, q.queue, q.task, q.before_id, q.batch_id)
    sql = _list_sql(tuple(v is not None for v in given))
    params = [v for v in given if v is not None]
    return [_job(r) for r in conn.execute(sql, (*params, q.limit))]


def _counts(conn: sqlite3.Connection, tenant: str | None) -> QueueCounts:
    rows = conn.execute(_COUNTS) if tenant is None else conn.execute(_COUNTS_OF_TENANT, (tenant,))
    return {(queue, _STATE[state]): n for queue, state, n in rows}


def _purge(conn: sqlite3.Connection, before: datetime, states: Sequence[State]) -> int:
    params = {"before": _us(before), "states": json.dumps([State(s).value for s in states])}
    conn.execute(_PURGE_EVENTS, params)
    return conn.execute(_PURGE_JOBS, params).rowcount


def _events(conn: sqlite3.Connection, sql: str, params: Row) -> list[Event]:
    return [_event(r) for r in conn.execute(sql, params)]


def _cancels(conn: sqlite3.Connection, job_ids: Sequence[str]) -> frozenset[str]:
    return frozenset(r[0] for r in conn.execute(_CANCELS, (json.dumps(list(job_ids)),)))


# pauses, schedules and batches -------------------------------------------------------

# ``IS`` compares NULL to NULL as equal: a scope is matched exactly, wildcards included.
_PAUSE_INSERT = "INSERT OR IGNORE INTO pauses (tenant, queue, at) VALUES (?, ?, ?)"
_PAUSE_SELECT = "SELECT tenant, queue, at FROM pauses WHERE tenant IS ? AND queue IS ?"
_PAUSE_DELETE = "DELETE FROM pauses WHERE tenant IS ? AND queue IS ?"
_PAUSE_LIST = "SELECT tenant, queue, at FROM pauses"
_PAUSE_LIST_OF_TENANT = "SELECT tenant, queue, at FROM pauses WHERE tenant = ?"


def _pause(conn: sqlite3.Connection, tenant: str | None, queue: str | None) -> Pause:
    """Idempotent: a scope already paused keeps the time it was first paused."""
    conn.execute(_PAUSE_INSERT, (tenant, queue, _now_us()))
    row = conn.execute(_PAUSE_SELECT, (tenant, queue)).fetchone()
    return Pause(row[0], row[1], _dt(row[2]))


def _resume(conn: sqlite3.Connection, tenant: str | None, queue: str | None) -> bool:
    return conn.execute(_PAUSE_DELETE, (tenant, queue)).rowcount > 0


def _pauses(conn: sqlite3.Connection, tenant: str | None) -> list[Pause]:
    rows = (
        conn.execute(_PAUSE_LIST)
        if tenant is None
        else conn.execute(_PAUSE_LIST_OF_TENANT, (tenant,))
    )
    return sorted((Pause(t, q, _dt(at)) for t, q, at in rows), key=pause_order)


# Column order follows ``Schedule``.
_SCHEDULE_COLUMNS = (
    "id, task, payload, cron, next_run_at, tenant, timezone, queue, priority, max_attempts, "
    "timeout, is_unique, last_run_at, last_job_id, created_at, updated_at, meta"
)
# A replace takes the rule from the caller and keeps the history of the stored row.
_SCHEDULE_UPSERT = (
    "INSERT INTO schedules (id, task, payload, cron, next_run_at, tenant, timezone, queue, "
    "priority, max_attempts, timeout, is_unique, created_at, updated_at, meta) "
    "VALUES (:id, :task, :payload, :cron, :next_run_at, :tenant, :timezone, :queue, "
    ":priority, :max_attempts, :timeout, :is_unique, :now, :now, :meta) "
    "ON CONFLICT (tenant, id) DO UPDATE SET task = excluded.task, "
    "payload = excluded.payload, cron = excluded.cron, next_run_at = excluded.next_run_at, "
    "timezone = excluded.timezone, queue = excluded.queue, priority = excluded.priority, "
    "max_attempts = excluded.max_attempts, timeout = excluded.timeout, "
    "is_unique = excluded.is_unique, updated_at = excluded.updated_at, meta = excluded.meta "
    f"RETURNING {_SCHEDULE_COLUMNS}"
)
_SCHEDULE_GET = f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE tenant = ? AND id = ?"
_SCHEDULE_LIST = f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY tenant, id"
_SCHEDULE_LIST_OF_TENANT = (
    f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE tenant = ? ORDER BY tenant, id"
)
_SCHEDULE_DELETE = "DELETE FROM schedules WHERE tenant = ? AND id = ?"
_SCHEDULE_DUE = (
    f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE next_run_at <= ? "
    "ORDER BY next_run_at, tenant, id LIMIT ?"
)
# Firing times are integer microseconds, so ``=`` is exact; the write lock held by
# the transaction makes the compare and the set one step across processes.
_SCHEDULE_ADVANCE = (
    "UPDATE schedules SET next_run_at = :next, last_run_at = :expected, "
    "last_job_id = COALESCE(:job, last_job_id) "
    "WHERE tenant = :tenant AND id = :id AND next_run_at = :expected"
)


def _schedule(r: Row) -> Schedule:
    return Schedule(
        id=r[0], task=r[1], payload=r[2], cron=r[3], next_run_at=_opt_dt(r[4]), tenant=r[5],
        timezone=r[6], queue=r[7], priority=r[8], max_attempts=r[9], timeout=r[10],
        unique=bool(r[11]), last_run_at=_opt_dt(r[12]), last_job_id=r[13],
        created_at=_opt_dt(r[14]), updated_at=_opt_dt(r[15]), meta=_loads(r[16]),
    )  # fmt: skip


def _schedule_upsert(conn: sqlite3.Connection, s: Schedule) -> Schedule:
    params = {
        "id": s.id, "task": s.task, "payload": s.payload, "cron": s.cron,
        "next_run_at": None if s.next_run_at is None else _us(s.next_run_at),
        "tenant": s.tenant, "timezone": s.timezone, "queue": s.queue, "priority": s.priority,
        "max_attempts": s.max_attempts, "timeout": s.timeout, "is_unique": int(s.unique),
        "now": _now_us(), "meta": _dumps(s.meta),
    }  # fmt: skip
    return _schedule(conn.execute(_SCHEDULE_UPSERT, params).fetchone())


def _schedules(conn: sqlite3.Connection, sql: str, params: Row) -> list[Schedule]:
    return [_schedule(r) for r in conn.execute(sql, params)]


def _schedule_delete(conn: sqlite3.Connection, schedule_id: str, tenant: str) -> bool:
    return conn.execute(_SCHEDULE_DELETE, (tenant, schedule_id)).rowcount > 0


def _schedule_advance(
    conn: sqlite3.Connection,
    schedule_id: str,
    tenant: str,
    expected: datetime,
    next_run_at: datetime | None,
    job_id: str | None,
) -> bool:
    params = {
        "id": schedule_id, "tenant": tenant, "expected": _us(expected),
        "next": None if next_run_at is None else _us(next_run_at), "job": job_id,
    }  # fmt: skip
    return conn.execute(_SCHEDULE_ADVANCE, params).rowcount > 0


# Column order follows ``Batch``; the last column is the counts of its jobs per
# state, computed in the same statement so that record and counts are one snapshot.
_BATCH_SELECT = (
    "SELECT id, tenant, created_at, name, then_jobs, finished_at, continuation_ids, meta, "
    "(SELECT json_group_object(state, n) FROM (SELECT state, count(*) AS n FROM jobs "
    "WHERE batch_id = batches.id GROUP BY state)) FROM batches"
)
_BATCH_GET = f"{_BATCH_SELECT} WHERE id = ? AND tenant = COALESCE(?, tenant)"
_BATCH_INSERT = (
    "INSERT OR IGNORE INTO batches (id, tenant, created_at, name, then_jobs, meta) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_BATCH_FINISH = (
    "UPDATE batches SET finished_at = ?, continuation_ids = ? WHERE id = ? AND finished_at IS NULL"
)
# Filters of ``batch_list``, in the order their parameters are bound.
_BATCH_FILTERS = ("tenant = ?", "finished_at IS NULL", "id < ?")


@lru_cache(maxsize=8)  # every subset of the three filters
def _batch_list_sql(present: tuple[bool, ...]) -> str:
    where = " AND ".join(f for f, on in zip(_BATCH_FILTERS, present, strict=True) if on)
    return f"{_BATCH_SELECT} {'WHERE ' + where if where else ''} ORDER BY id DESC LIMIT ?"


def _batch(r: Row) -> Batch:
    counts: dict[str, int] = json.loads(r[8])
    return Batch(
        id=r[0], tenant=r[1], created_at=_dt(r[2]), name=r[3], then=r[4],
        finished_at=_opt_dt(r[5]), continuation_ids=json.loads(r[6]),
        counts={_STATE[state]: n for state, n in counts.items()}, meta=_loads(r[7]),
    )  # fmt: skip


def _batch_create(conn: sqlite3.Connection, new: NewBatch) -> Batch:
    """An id already stored is left as it is and handed back, jobs counted."""
    row = (new.id, new.tenant, _now_us(), new.name, new.then, _dumps(new.meta))
    conn.execute(_BATCH_INSERT, row)
    return _batch(conn.execute(_BATCH_GET, (new.id, None)).fetchone())


def _batch_get(conn: sqlite3.Connection, batch_id: str, tenant: str | None) -> Batch | None:
    row = conn.execute(_BATCH_GET, (batch_id, tenant)).fetchone()
    return None if row is None else _batch(row)


def _batch_list(
    conn: sqlite3.Connection,
    tenant: str | None,
    unfinished: bool,
    before_id: str | None,
    limit: int,
) -> list[Batch]:
    sql = _batch_list_sql((tenant is not None, unfinished, before_id is not None))
    params = [v for v in (tenant, before_id) if v is not None]
    return [_batch(r) for r in conn.execute(sql, (*params, limit))]


def _batch_finish(conn: sqlite3.Connection, batch_id: str, continuation_ids: Sequence[str]) -> bool:
    params = (_now_us(), json.dumps(list(continuation_ids)), batch_id)
    return conn.execute(_BATCH_FINISH, params).rowcount > 0


# limits and the worker registry ------------------------------------------------------

# Every acquire first drops what has run out, for all keys: an indexed range that
# is empty almost always, and what keeps both tables bounded by what is live.
_SLOTS_EXPIRE = "DELETE FROM limit_slots WHERE until <= ?"
_SLOT_RENEW = "UPDATE limit_slots SET until = ? WHERE key = ? AND holder = ?"
_SLOTS_HELD = "SELECT count(*) FROM limit_slots WHERE key = ?"
_SLOT_INSERT = "INSERT INTO limit_slots (key, holder, until) VALUES (?, ?, ?)"
_SLOT_RELEASE = "DELETE FROM limit_slots WHERE key = ? AND holder = ?"
_RATE_EXPIRE = "DELETE FROM rate_starts WHERE until <= ?"
# The caller's window decides, not the one a start was admitted under.
_RATE_FORGET = "DELETE FROM rate_starts WHERE key = ? AND at <= ?"
_RATE_ADMITTED = "SELECT count(*) FROM rate_starts WHERE key = ?"
_RATE_INSERT = "INSERT INTO rate_starts (key, at, until) VALUES (?, ?, ?)"
# The ``limit``-th most recent start: once it leaves the window, one more fits.
_RATE_BLOCKING = "SELECT at FROM rate_starts WHERE key = ? ORDER BY at DESC LIMIT 1 OFFSET ?"

# Column order follows ``WorkerInfo``.
_WORKER_COLUMNS = "id, hostname, pid, queues, concurrency, started_at, job_ids, last_seen_at, meta"
_WORKERS_EXPIRE = "DELETE FROM workers WHERE expires_at <= ?"
_WORKER_BEAT = (
    f"INSERT OR REPLACE INTO workers ({_WORKER_COLUMNS}, expires_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_WORKER_LIST = f"SELECT {_WORKER_COLUMNS} FROM workers WHERE expires_at > ? ORDER BY id"
_WORKER_REMOVE = "DELETE FROM workers WHERE id = ?"


def _limit_acquire(
    conn: sqlite3.Connection, key: str, holder: str, limit: int, hold_for: float
) -> bool:
    """Count, then take: the write lock held since BEGIN IMMEDIATE keeps any
    other process from taking a slot in between."""
    now = _now_us()
    until = now + _micros(hold_for)
    conn.execute(_SLOTS_EXPIRE, (now,))
    if conn.execute(_SLOT_RENEW, (until, key, holder)).rowcount:
        return True
    held: int = conn.execute(_SLOTS_HELD, (key,)).fetchone()[0]
    if held >= limit:
        return False
    conn.execute(_SLOT_INSERT, (key, holder, until))
    return True


def _limit_release(conn: sqlite3.Connection, key: str, holder: str) -> None:
    conn.execute(_SLOT_RELEASE, (key, holder))


def _rate_acquire(conn: sqlite3.Connection, key: str, limit: int, period: float) -> float:
    """Count, then record, under the write lock like ``_limit_acquire``."""
    now = _now_us()
    window = _micros(period)
    conn.execute(_RATE_EXPIRE, (now,))
    conn.execute(_RATE_FORGET, (key, now - window))
    admitted: int = conn.execute(_RATE_ADMITTED, (key,)).fetchone()[0]
    if admitted < limit:
        conn.execute(_RATE_INSERT, (key, now, now + window))
        return 0.0
    row = conn.execute(_RATE_BLOCKING, (key, max(limit - 1, 0))).fetchone()
    if row is None:  # a limit below one admits nothing, ever
        return float(period)
    blocking: int = row[0]
    return max(0.0, (blocking + window - now) / 1_000_000)


def _worker(r: Row) -> WorkerInfo:
    return WorkerInfo(
        id=r[0], hostname=r[1], pid=r[2], queues=json.loads(r[3]), concurrency=r[4],
        started_at=_dt(r[5]), job_ids=json.loads(r[6]), last_seen_at=_dt(r[7]),
        meta=_loads(r[8]),
    )  # fmt: skip


def _worker_beat(conn: sqlite3.Connection, info: WorkerInfo, ttl: float) -> None:
    """A beat is a write anyway, so it is where workers that went silent are
    forgotten; listings only filter them out."""
    now = _now_us()
    conn.execute(_WORKERS_EXPIRE, (now,))
    conn.execute(_WORKER_BEAT, (
        info.id, info.hostname, info.pid, json.dumps(list(info.queues)), info.concurrency,
        _us(info.started_at), json.dumps(list(info.job_ids)), now, _dumps(info.meta),
        now + _micros(ttl),
    ))  # fmt: skip


def _worker_list(conn: sqlite3.Connection) -> list[WorkerInfo]:
    return [_worker(r) for r in conn.execute(_WORKER_LIST, (_now_us(),))]


def _worker_remove(conn: sqlite3.Connection, worker_id: str) -> None:
    conn.execute(_WORKER_REMOVE, (worker_id,))


# wake-ups inside this process ------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    queues: frozenset[str]
    event: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by a write of this process; the event alone may also mean "the WAL
    # index moved", which still has to be confirmed.
    notified: bool = False

    def notify(self) -> None:
        self.notified = True
        self.event.set()


_waiters: dict[str, set[_Waiter]] = {}
_waiters_lock = threading.Lock()
# Per file, how many wake-ups this process has sent: a waiter compares it with
# the count seen by the lease before it, so a write of this process that landed
# in between (on the same connection, which data_version cannot see) still counts.
_generations: dict[str, int] = {}


def _notify(path: str, queues: Iterable[str] | None) -> None:
    """Wake the waiters of this database file for any of ``queues`` (all of them
    when ``None``), whichever instance, thread or loop they belong to."""
    wanted = None if queues is None else set(queues)
    with _waiters_lock:
        _generations[path] = _generations.get(path, 0) + 1
        waiters = [
            w for w in _waiters.get(path, ()) if wanted is None or not w.queues.isdisjoint(wanted)
        ]
    for waiter in waiters:
        if not waiter.loop.is_closed():
            waiter.loop.call_soon_threadsafe(waiter.notify)


def _generation(path: str) -> int:
    with _waiters_lock:
        return _generations.get(path, 0)


def _register(path: str, waiter: _Waiter) -> None:
    with _waiters_lock:
        _waiters.setdefault(path, set()).add(waiter)


def _unregister(path: str, waiter: _Waiter) -> None:
    with _waiters_lock:
        waiters = _waiters.get(path)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del _waiters[path]


# the URL ---------------------------------------------------------------------------

_SYNCHRONOUS = frozenset({"off", "normal", "full", "extra"})


@dataclass(frozen=True)
class _Options:
    path: str
    synchronous: str = "normal"
    busy_timeout: float = 10.0
    cross_process_poll: float = 0.005


# Reading ``data_version`` is a round trip to the connection's thread (about a
# quarter of a millisecond of CPU): where it must be polled, not more often.
_DATA_VERSION_POLL_FLOOR = 0.05
# The WAL-index header: 48 bytes at the start of the -shm file, rewritten at
# every commit (https://www.sqlite.org/walformat.html, "The WAL-Index Header").
_WAL_HEADER_BYTES = 48
# With inotify saying when the WAL was written, the header is still read this
# often, in case a notification never comes (a watch the kernel dropped).
_NOTIFIED_POLL = 0.25


@dataclass(frozen=True, slots=True)
class _Mark:
    """Where the file stood when a lease last looked: this process's wake-up
    count, the connection's data_version and the WAL-index header (``None``
    where it cannot be read)."""

    generation: int
    version: int
    header: bytes | None


def _parse(url: str) -> _Options:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db``, with optional
    ``?synchronous=full&busy_timeout=30&cross_process_poll=0.01``."""
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc or not path or path == ":memory:":
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (memory:// for an in-process store)"
        )
    query = dict(parse_qsl(parts.query))
    try:
        options = _Options(
            os.path.realpath(path),
            query.pop("synchronous", "normal").lower(),
            float(query.pop("busy_timeout", 10.0)),
            float(query.pop("cross_process_poll", _Options.cross_process_poll)),
        )
    except ValueError as exc:
        raise ConfigurationError(f"bad option in SQLite URL {url!r}: {exc}") from None
    if query or options.synchronous not in _SYNCHRONOUS:
        raise ConfigurationError(
            f"bad option in SQLite URL {url!r}: known options are synchronous "
            f"({', '.join(sorted(_SYNCHRONOUS))}), busy_timeout and cross_process_poll (seconds)"
        )
    return options


def _connect(options: _Options) -> sqlite3.Connection:
    Path(options.path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(options.path, timeout=options.busy_timeout, isolation_level=None)
    _ensure_wal(conn, options.busy_timeout)
    conn.execute(f"PRAGMA synchronous = {options.synchronous.upper()}")
    _migrate(conn)
    return conn


def _ensure_wal(conn: sqlite3.Connection, wait: float) -> None:
    """WAL is a property of the file, so only the first connection switches it.
    The switch takes a lock that SQLite's busy handler does not always wait for
    (it answers "database is locked" at once while another connection writes),
    so a connection that finds WAL on skips it, and one that must switch retries
    within the busy timeout."""
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the file to ``SCHEMA_VERSION``; the version is re-read under the
    write lock so that processes opening a new file at once migrate it once."""
    if _user_version(conn) == SCHEMA_VERSION:
        return
    with _transaction(conn):
        version = _user_version(conn)
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the SQLite file has schema version {version}, newer than this "
                f"offload's {SCHEMA_VERSION}: upgrade offload"
            )
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the file."""
    version: int = conn.execute("PRAGMA data_version").fetchone()[0]
    return version


def _watch_wal_file(path: str) -> INotify | None:
    """An inotify watch (inotify_simple, Linux only) whose descriptor becomes
    readable whenever the ``-wal`` file is written, or ``None`` where there is
    none (another OS, the package missing, the instance limit reached)."""
    if INotify is None:
        return None
    try:
        watch = INotify(nonblocking=True)
    except OSError:
        return None
    try:
        watch.add_watch(path + "-wal", inotify_flags.MODIFY)
    except OSError:
        watch.close()
        return None
    return watch


def _drain(fd: int) -> None:
    """Read and drop the pending notifications: only "something was written"
    matters, and the WAL-index header says whether it was a commit."""
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, OSError):
        pass


def _open_wal_index(conn: sqlite3.Connection, path: str) -> int | None:
    """A read-only descriptor of the file's WAL index, or ``None`` when there is
    none to watch (not in WAL mode, no ``pread``, another VFS)."""
    if not hasattr(os, "pread"):
        return None
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return None
    try:
        fd = os.open(path + "-shm", os.O_RDONLY)
    except OSError:
        return None
    if len(os.pread(fd, _WAL_HEADER_BYTES, 0)) < _WAL_HEADER_BYTES:
        os.close(fd)
        return None
    return fd


class _HeaderWatch:
    """One wait's watch of the WAL-index header: read when inotify reports a
    write to the WAL (where it can) and on a timer, with no task per look; the
    first value that differs is kept in ``moved`` and sets the waiter's event."""

    def __init__(
        self,
        waiter: _Waiter,
        header: bytes,
        read: Callable[[], bytes | None],
        events: int | None,
        poll: float,
    ) -> None:
        self.waiter, self.header, self.read, self.events = waiter, header, read, events
        # With notifications the timer is only the safety net.
        self.poll = poll if events is None else max(poll, _NOTIFIED_POLL)
        self.moved: list[bytes] = []
        self.loop = waiter.loop
        self.handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.events is not None:
            # Writes before now are covered by the first look below; any later
            # one makes the descriptor readable.
            _drain(self.events)
            self.loop.add_reader(self.events, self._written)
        self._tick()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        if self.events is not None:
            self.loop.remove_reader(self.events)

    def _look(self) -> bool:
        now = self.read()
        if now == self.header:
            return False
        if not self.moved:
            self.moved.append(b"" if now is None else now)
            self.waiter.event.set()
        return True

    def _tick(self) -> None:
        if not self._look():
            self.handle = self.loop.call_later(self.poll, self._tick)

    def _written(self) -> None:
        if self.events is not None:
            _drain(self.events)
        self._look()


# the backend -----------------------------------------------------------------------


class SQLiteBackend(Backend):
    """Jobs and events in one SQLite file, safe to share between processes."""

    def __init__(self, url: str, *, options: _Options | None = None) -> None:
        self.url = url
        self._options = options if options is not None else _parse(url)
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self._wal_index: int | None = None
        self._wal_events: INotify | None = None
        self._marks: dict[tuple[str, ...], _Mark] = {}

    @property
    def path(self) -> str:
        return self._options.path

    def clone(self) -> SQLiteBackend:
        # The resolved path travels with the clone: a relative URL must not be
        # re-resolved against another working directory.
        return SQLiteBackend(self.url, options=self._options)

    async def open(self) -> None:
        if self._conn is not None:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            self._closed = False
            if self._conn is None:
                pool = ThreadPoolExecutor(1, thread_name_prefix="offload-sqlite")
                loop = asyncio.get_running_loop()
                conn = await loop.run_in_executor(pool, _connect, self._options)
                self._wal_index = await loop.run_in_executor(pool, _open_wal_index, conn, self.path)
                if self._wal_index is not None:
                    self._wal_events = _watch_wal_file(self.path)
                self._conn, self._pool = conn, pool

    async def close(self) -> None:
        pool, conn = self._pool, self._conn
        self._pool = self._conn = None
        self._closed = True
        self._marks.clear()
        if self._wal_index is not None:
            os.close(self._wal_index)
        if self._wal_events is not None:
            self._wal_events.close()
        self._wal_index = None
        self._wal_events = None
        if pool is None or conn is None:
            return
        await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        pool.shutdown(wait=False)

    async def now(self) -> datetime:
        return _dt(_now_us())

    def describe(self) -> dict[str, Any]:
        return {
            "backend": type(self).__name__,
            "path": self.path,
            "synchronous": self._options.synchronous,
            "schema_version": SCHEMA_VERSION,
        }

    # running work on the connection's thread -------------------------------------

    async def _run(self, work: Callable[[], T]) -> T:
        # Opened on first use for convenience, but never behind a close():
        # a reopened connection nobody closes again would leak.
        if self._pool is None and not self._closed:
            await self.open()
        if self._pool is None:
            raise BackendError("the SQLite backend was closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def _write(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        def work() -> T:
            conn = self._connection()
            with _transaction(conn):
                return fn(conn, *args, **kwargs)

        return await self._run(work)

    async def _read(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A read is one statement in autocommit, which SQLite runs as its own
        snapshot; no write lock is taken."""
        return await self._run(lambda: fn(self._connection(), *args, **kwargs))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendError("the SQLite backend was closed")
        return self._conn

    # jobs --------------------------------------------------------------------------

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        stored = await self._write(_enqueue_many, jobs)
        self._wake(stored)
        return stored

    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        """The mark a following ``wait_for_jobs`` on these queues starts from is
        taken under the lease's write lock: no other connection can commit
        between the lease's read and the mark, so no commit falls in a gap."""
        if limit <= 0 or not queues:
            return []

        def lease(conn: sqlite3.Connection) -> list[Job]:
            jobs = _lease(conn, worker_id, queues, limit, lease_for)
            self._marks[tuple(queues)] = self._mark(conn)
            return jobs

        return await self._write(lease)

    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        if not leases:
            return HeartbeatReply()
        return await self._write(_heartbeat, leases, lease_for)

    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        if not items:
            return []
        return await self._write(_complete_many, items)

    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        return await self._write(_fail, lease, error, retry_in)

    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        return await self._write(_reject, lease, error)

    async def job_requeue(self, lease: Lease, checkpoint: bytes | None) -> Job | None:
        return self._woken(await self._write(_requeue, lease, checkpoint))

    async def job_snooze(self, lease: Lease, delay: float, reason: str) -> Job | None:
        """Waiters are woken only when the job is due at once. A snooze happens
        whenever a limit is full, and a wake-up costs every waiter a lease under
        the write lock, so a job due later is found the way a retry is: by the
        worker that snoozed it looking again then, or by the next poll."""
        job = await self._write(_snooze, lease, delay, reason)
        return self._woken(job) if delay <= 0 else job

    async def job_cancel(self, job_id: str, tenant: str | None = None) -> Job | None:
        return await self._write(_cancel, job_id, tenant)

    async def job_cancels(self, job_ids: Sequence[str]) -> frozenset[str]:
        if not job_ids:
            return frozenset()
        return await self._read(_cancels, job_ids)

    async def job_cancel_confirm(self, lease: Lease) -> Job | None:
        return await self._write(_cancel_confirm, lease)

    async def job_save_progress(
        self, lease: Lease, checkpoint: bytes | None, progress: float | None, message: str | None
    ) -> bool:
        return await self._write(_save_progress, lease, checkpoint, progress, message)

    async def job_redrive(self, job_id: str, tenant: str | None = None) -> Job | None:
        return self._woken(await self._write(_redrive, job_id, tenant))

    async def job_recover_expired(self) -> list[Job]:
        jobs = await self._write(_recover_expired)
        self._wake(j for j in jobs if lc.START.allows(j.state))
        return jobs

    async def job_get(self, job_id: str, tenant: str | None = None) -> Job | None:
        return await self._read(_get, job_id, tenant)

    async def job_list(self, query: JobQuery) -> list[Job]:
        if query.states is not None and not query.states:
            return []
        return await self._read(_list, query)

    async def job_counts(self, tenant: str | None = None) -> QueueCounts:
        return await self._read(_counts, tenant)

    async def job_purge(self, finished_before: datetime, states: Sequence[State]) -> int:
        if not states:
            return 0
        return await self._write(_purge, finished_before, states)

    # control: pause and resume ------------------------------------------------------

    async def control_pause(self, tenant: str | None, queue: str | None) -> Pause:
        return await self._write(_pause, tenant, queue)

    async def control_resume(self, tenant: str | None, queue: str | None) -> bool:
        """A lifted pause wakes the waiters it held back: those of its queue, or
        every waiter when it spanned queues. Other processes see the commit
        through ``data_version``."""
        lifted = await self._write(_resume, tenant, queue)
        if lifted:
            _notify(self.path, None if queue is None else (queue,))
        return lifted

    async def control_pauses(self, tenant: str | None = None) -> list[Pause]:
        return await self._read(_pauses, tenant)

    # control: limits shared by every worker -----------------------------------------

    async def limit_acquire(self, key: str, holder: str, limit: int, hold_for: float) -> bool:
        return await self._write(_limit_acquire, key, holder, limit, hold_for)

    async def limit_release(self, key: str, holder: str) -> None:
        await self._write(_limit_release, key, holder)

    async def rate_acquire(self, key: str, limit: int, period: float) -> float:
        return await self._write(_rate_acquire, key, limit, period)

    # workers -------------------------------------------------------------------------

    async def worker_beat(self, info: WorkerInfo, ttl: float) -> None:
        await self._write(_worker_beat, info, ttl)

    async def worker_list(self) -> list[WorkerInfo]:
        return await self._read(_worker_list)

    async def worker_remove(self, worker_id: str) -> None:
        await self._write(_worker_remove, worker_id)

    # schedules -----------------------------------------------------------------------

    async def schedule_upsert(self, schedule: Schedule) -> Schedule:
        return await self._write(_schedule_upsert, schedule)

    async def schedule_get(self, schedule_id: str, tenant: str) -> Schedule | None:
        found = await self._read(_schedules, _SCHEDULE_GET, (tenant, schedule_id))
        return found[0] if found else None

    async def schedule_list(self, tenant: str | None = None) -> list[Schedule]:
        if tenant is None:
            return await self._read(_schedules, _SCHEDULE_LIST, ())
        return await self._read(_schedules, _SCHEDULE_LIST_OF_TENANT, (tenant,))

    async def schedule_delete(self, schedule_id: str, tenant: str) -> bool:
        return await self._write(_schedule_delete, schedule_id, tenant)

    async def schedule_due(self, before: datetime, limit: int = 100) -> list[Schedule]:
        return await self._read(_schedules, _SCHEDULE_DUE, (_us(before), limit))

    async def schedule_advance(
        self,
        schedule_id: str,
        tenant: str,
        expected: datetime,
        next_run_at: datetime | None,
        job_id: str | None,
    ) -> bool:
        return await self._write(
            _schedule_advance, schedule_id, tenant, expected, next_run_at, job_id
        )

    # batches -------------------------------------------------------------------------

    async def batch_create(self, batch: NewBatch) -> Batch:
        return await self._write(_batch_create, batch)

    async def batch_get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        return await self._read(_batch_get, batch_id, tenant)

    async def batch_list(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        return await self._read(_batch_list, tenant, unfinished, before_id, limit)

    async def batch_finish(self, batch_id: str, continuation_ids: Sequence[str]) -> bool:
        return await self._write(_batch_finish, batch_id, continuation_ids)

    # events ------------------------------------------------------------------------

    async def event_list(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        return await self._read(_events, _EVENTS_OF_JOB, (job_id, after, limit))

    async def event_latest(self, job_id: str) -> Event | None:
        events = await self._read(_events, _LATEST_EVENT, (job_id,))
        return events[0] if events else None

    async def event_feed(
        self, after: int = 0, tenant: str | None = None, limit: int = 1000
    ) -> list[Event]:
        return await self._read(_events, _FEED, (after, tenant, limit))

    # delivery ----------------------------------------------------------------------

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Woken at once by a write of this process; a commit of another process
        is seen within ``cross_process_poll`` seconds through the WAL index.
        The wait starts from the mark of the last lease on the same queues, so a
        job committed after that lease looked ends it at once."""
        waiter = _Waiter(asyncio.get_running_loop(), frozenset(queues))
        _register(self.path, waiter)
        try:
            await self._wait(waiter, self._marks.pop(tuple(queues), None), timeout)
        finally:
            _unregister(self.path, waiter)

    def _mark(self, conn: sqlite3.Connection) -> _Mark:
        return _Mark(_generation(self.path), _data_version(conn), self._wal_header())

    def _wal_header(self) -> bytes | None:
        fd = self._wal_index
        if fd is None:
            return None
        try:
            return os.pread(fd, _WAL_HEADER_BYTES, 0)
        except OSError:
            return None

    async def _wait(self, waiter: _Waiter, mark: _Mark | None, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if mark is None:
            mark = await self._run(lambda: self._mark(self._connection()))
        if _generation(self.path) != mark.generation:
            return
        header = mark.header
        poll = self._options.cross_process_poll
        while not waiter.notified and (left := deadline - loop.time()) > 0:
            if header is None:
                header = await self._poll_version(
                    waiter, min(left, max(poll, _DATA_VERSION_POLL_FLOOR))
                )
            else:
                header = await self._watch(waiter, header, left, poll)
            if header is None:
                return
            # Something committed; confirm it was not this connection.
            if self._conn is None or await self._read(_data_version) != mark.version:
                return
            if header == b"":
                header = None

    async def _poll_version(self, waiter: _Waiter, seconds: float) -> bytes | None:
        """Without a WAL index: ``b""`` after ``seconds`` (time to read
        data_version), ``None`` when woken first."""
        try:
            await asyncio.wait_for(waiter.event.wait(), seconds)
        except TimeoutError:
            return b""
        return None

    async def _watch(
        self, waiter: _Waiter, header: bytes, left: float, poll: float
    ) -> bytes | None:
        """Until the WAL-index header differs from ``header`` (its new value, or
        ``b""`` once it cannot be read), a wake-up of this process or the end of
        ``left`` seconds (``None``)."""
        events = None if self._wal_events is None else self._wal_events.fileno()
        watch = _HeaderWatch(waiter, header, self._wal_header, events, poll)
        watch.start()
        try:
            if not watch.moved:
                await asyncio.wait_for(waiter.event.wait(), left)
        except TimeoutError:
            return None
        finally:
            watch.stop()
        if waiter.notified or not watch.moved:
            return None
        waiter.event.clear()
        return watch.moved[0]

    def _wake(self, jobs: Iterable[Job]) -> None:
        queues = {job.queue for job in jobs}
        if queues:
            _notify(self.path, queues)

    def _woken(self, job: Job | None) -> Job | None:
        if job is not None:
            self._wake((job,))
        return job


__all__ = ["SCHEMA_VERSION", "SQLiteBackend"]
