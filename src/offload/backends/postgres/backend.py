"""The PostgreSQL backend: the contract of ``backends/base.py`` as guarded SQL.

Each method runs one named statement from ``sql/queries.sql``: a transition is
a single UPDATE guarded by its source states (and lease token), with its events
inserted by the same statement, so it is atomic without explicit transactions
and a refused transition changes nothing. What a transition writes and stamps
on its events is rendered into its statement from ``offload.lifecycle`` when
the SQL file is loaded (``_effects``); a method hands in only the values the
caller gave it and the event data ``offload.event_data`` built. Limits shared
by workers are upserts on one row per key, which the statement locks and
decides on. Every timestamp comes from the server's clock.

Connection loss. Connections are pooled; a connection whose socket shows the
server hung up is found before use, and the whole pool is then swept so the
next caller does not meet the next dead one. A call that still fails on a lost
connection is retried once when repeating it is harmless (reads, enqueue, which
is idempotent by job id, heartbeats, cancel, pause, schedule upsert, batch
create, a holder taking or giving back its concurrency slot, and the worker
registry); any other call raises ``BackendError``, because its first try may
have been applied and a blind repeat would be refused and reported as a lost
lease, a lost compare-and-set or a pause that was not there, or, for
``rate_acquire``, would record a second start for one job.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.base import Backend, QueueCounts, ThreadStore, check_release, pause_order
from offload.backends.postgres import _rows, _sql
from offload.backends.postgres._url import parse_url
from offload.backends.postgres.enqueue import enqueue_async
from offload.backends.postgres.listener import Listener
from offload.backends.postgres.migrate import migrate_connection
from offload.backends.postgres.probe import probe
from offload.errors import BackendError
from offload.job import (
    Batch,
    Cancellation,
    DayCount,
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

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]
Rows = list[_rows.Row]


class PostgresBackend(Backend):
    def __init__(self, url: str = "postgresql://localhost/postgres") -> None:
        self.url = url
        self._options = parse_url(url)
        self._schema = self._options.schema
        self._q = _sql.queries(self._schema)
        self._channel = _sql.channel(self._schema)
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._listener: Listener | None = None
        self._opening: asyncio.Lock | None = None

    def clone(self) -> PostgresBackend:
        return PostgresBackend(self.url)

    # lifecycle of the backend --------------------------------------------------------

    async def open(self) -> None:
        """Start the pool and, unless ``?migrate=false``, migrate the schema.

        Cheap once open: the App calls it before every use of the backend."""
        if self._pool is not None:
            return
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await self._start_pool()

    async def _start_pool(self) -> AsyncConnectionPool[Conn]:
        o = self._options
        await probe(o, self._where())
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            o.conninfo, min_size=min(o.pool_min, o.pool_max), max_size=o.pool_max,
            timeout=o.pool_timeout, kwargs={"autocommit": True}, configure=_configure,
            check=self._check, open=False, name=f"offload-{self._schema}",
        )  # fmt: skip
        try:
            await pool.open(wait=True, timeout=o.pool_timeout)
            if o.migrate:
                async with pool.connection() as conn:
                    await migrate_connection(conn, o)
        except (psycopg.Error, PoolTimeout) as exc:
            await pool.close()
            raise BackendError(f"cannot open PostgreSQL backend {self._where()}: {exc}") from exc
        return pool

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        if listener is not None:
            await listener.close()
        if pool is not None:
            await pool.close()

    async def now(self) -> datetime:
        [(moment,)] = await self._rows("now", {}, retry=True)
        return moment  # type: ignore[no-any-return]

    def thread_store(self) -> ThreadStore:
        from offload.backends.postgres.sync_store import PostgresThreadStore

        return PostgresThreadStore(self._options, self._where())

    def describe(self) -> dict[str, Any]:
        info = conninfo_to_dict(self._options.conninfo)
        return {
            "backend": type(self).__name__,
            "host": info.get("host", "localhost"),
            "port": info.get("port", 5432),
            "database": info.get("dbname"),
            "schema": self._schema,
        }

    # jobs ------------------------------------------------------------------------------

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []

        async def run(conn: Conn) -> list[Job]:
            return await enqueue_async(conn, jobs, self._schema)

        return await self._with_conn(run, retry=True, what="job_enqueue_many")

    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        if limit <= 0 or not queues:
            return []
        params = {"queues": list(queues), "limit": limit, "worker": worker_id,
                  "lease_for": float(lease_for)}  # fmt: skip
        return [_rows.job(row) for row in await self._rows("job_lease", params)]

    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        valid = [lease for lease in leases if _rows.is_uuid(lease.job_id)]
        rows: Rows = []
        if valid:
            params = {
                "ids": [lease.job_id for lease in valid],
                "tokens": [lease.token for lease in valid],
                "lease_for": float(lease_for),
            }
            rows = await self._rows("job_heartbeat", params, retry=True)
        live = {(job_id, token) for job_id, token, _ in rows}
        lost = {lease.job_id for lease in leases if (lease.job_id, lease.token) not in live}
        cancel = {job_id for job_id, _, asked in rows if asked}
        return HeartbeatReply(frozenset(lost), frozenset(cancel))

    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        valid = [(i, lease, result) for i, (lease, result) in enumerate(items)
                 if _rows.is_uuid(lease.job_id)]  # fmt: skip
        if not valid:
            return [False] * len(items)
        params = {
            "ids": [lease.job_id for _, lease, _ in valid],
            "tokens": [lease.token for _, lease, _ in valid],
            "results": [result for _, _, result in valid],
            "sources": _states(lc.SUCCEED.sources),
        }
        applied = {valid[ord_ - 1][0] for (ord_,) in await self._rows("job_complete_many", params)}
        return [i in applied for i in range(len(items))]

    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        if retry_in is None:
            return await self._leased(lc.FAIL, lease, _failure(error))
        extra = _failure(error) | {"delay": float(retry_in), "channel": self._channel}
        return await self._leased(lc.RETRY, lease, extra)

    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        return await self._leased(lc.REJECT, lease, _failure(error))

    async def job_discard(self, lease: Lease, error: ErrorInfo, *, ran: bool) -> Job | None:
        return await self._leased(lc.DISCARD if ran else lc.DISCARD_REJECTED, lease,
                                  _failure(error))  # fmt: skip

    async def job_requeue(self, lease: Lease, checkpoint: bytes | None) -> Job | None:
        extra = {"checkpoint": checkpoint, "channel": self._channel}
        return await self._leased(lc.REQUEUE, lease, extra)

    async def job_cancel(self, job_id: str, tenant: str | None = None) -> Cancellation | None:
        """One statement whatever the job's state. Retried after a lost connection,
        which changes nothing twice; but when the first try did cancel a waiting
        job, the repeat finds it ended and answers ``ENDED``."""
        if not _rows.is_uuid(job_id):
            return None
        params = {"id": job_id, "tenant": tenant, "kind": EventKind.CANCEL_REQUESTED.value}
        rows = await self._rows("job_cancel", params, retry=True)
        return _rows.cancellation(rows[0]) if rows else None

    async def job_snooze(self, lease: Lease, delay: float, reason: str) -> Job | None:
        """Not retried, like every leased transition: a repeat after a lost reply
        would find the lease gone and report the job as lost."""
        extra = {"delay": float(delay), "data": Jsonb(ed.snoozed(delay, reason)),
                 "channel": self._channel}  # fmt: skip
        return await self._leased(lc.SNOOZE, lease, extra)

    async def job_cancels(self, job_ids: Sequence[str]) -> frozenset[str]:
        ids = [job_id for job_id in job_ids if _rows.is_uuid(job_id)]
        if not ids:
            return frozenset()
        rows = await self._rows("job_cancels", {"ids": ids}, retry=True)
        return frozenset(job_id for (job_id,) in rows)

    async def job_cancel_confirm(self, lease: Lease) -> Job | None:
        return await self._leased(lc.CANCEL_RUNNING, lease, {})

    async def job_save_progress(
        self, lease: Lease, checkpoint: bytes | None, progress: float | None, message: str | None
    ) -> bool:
        if not _rows.is_uuid(lease.job_id):
            return False
        params = {
            "id": lease.job_id, "token": lease.token, "checkpoint": checkpoint,
            "progress": progress, "message": message, "kind": EventKind.PROGRESS.value,
            "data": None if progress is None else Jsonb(ed.progress(progress, message)),
        }  # fmt: skip
        return bool(await self._rows("job_save_progress", params))

    async def job_redrive(self, job_id: str, tenant: str | None = None) -> Job | None:
        """REDRIVE; refused (``None``) while another live job holds the same unique
        key, since two live jobs with one key is what unique keys rule out."""
        if not _rows.is_uuid(job_id):
            return None
        params = {"id": job_id, "tenant": tenant, "channel": self._channel,
                  "sources": _states(lc.REDRIVE.sources)}  # fmt: skip
        try:
            return await self._one("job_redrive", params, False)
        except BackendError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                return None
            raise

    async def job_release(
        self, job_id: str, transition: lc.Transition, data: dict[str, Any]
    ) -> Job | None:
        check_release(transition)
        if not _rows.is_uuid(job_id):
            return None
        query = "job_release" if transition is lc.RELEASE else "job_cancel_dependent"
        params = {"id": job_id, "channel": self._channel, "data": Jsonb(data),
                  "sources": _states(transition.sources)}  # fmt: skip
        return await self._one(query, params, False)

    async def job_recover_expired(self) -> list[Job]:
        params = {"error": Jsonb(ed.LEASE_EXPIRED.to_dict()), "channel": self._channel}
        cancelled = await self._rows("job_recover_expired_cancelled", {})
        discarded = await self._rows("job_recover_expired_discarded", params)
        rows = [*cancelled, *discarded, *await self._rows("job_recover_expired", params)]
        return [_rows.job(row) for row in rows]

    async def job_get(self, job_id: str, tenant: str | None = None) -> Job | None:
        if not _rows.is_uuid(job_id):
            return None
        return await self._one("job_get", {"id": job_id, "tenant": tenant}, True)

    async def job_list(self, query: JobQuery) -> list[Job]:
        if query.before_id is not None and not _rows.is_uuid(query.before_id):
            return []
        params = {
            "tenant": query.tenant, "queue": query.queue, "task": query.task,
            "states": None if query.states is None else _states(query.states),
            "before_id": query.before_id, "limit": max(0, query.limit),
            "batch_id": query.batch_id,
        }  # fmt: skip
        return [_rows.job(row) for row in await self._rows("job_list", params, retry=True)]

    async def job_counts(self, tenant: str | None = None) -> QueueCounts:
        rows = await self._rows("job_counts", {"tenant": tenant}, retry=True)
        return {(queue, State(state)): count for queue, state, count in rows}

    async def job_stats(self, tenant: str | None, queue: str | None) -> list[DayCount]:
        rows = await self._rows("job_stats", {"tenant": tenant, "queue": queue}, retry=True)
        return [DayCount(q, day, State(outcome), int(n)) for q, day, outcome, n in rows]

    async def job_purge(self, finished_before: datetime, states: Sequence[State]) -> int:
        wanted = set(states) & lc.ENDED
        if not wanted:
            return 0
        params = {"states": _states(wanted), "before": finished_before}
        [(count,)] = await self._rows("job_purge", params)
        return int(count)

    # control: pause and resume -----------------------------------------------------

    async def control_pause(self, tenant: str | None, queue: str | None) -> Pause:
        params = {"tenant": tenant, "queue": queue, **_scope_event(tenant, queue)}
        [row] = await self._rows("control_pause", params, retry=True)
        return _rows.pause(row)

    async def control_resume(self, tenant: str | None, queue: str | None) -> bool:
        """Lift the pause and wake waiting workers, whose next lease may now find
        jobs. Not retried: a repeat after a lost reply would report ``False``."""
        params = {"tenant": tenant, "queue": queue, "channel": self._channel,
                  **_scope_event(tenant, queue)}  # fmt: skip
        [(count,)] = await self._rows("control_resume", params)
        return bool(count)

    async def control_pauses(self, tenant: str | None = None) -> list[Pause]:
        rows = await self._rows("control_pauses", {"tenant": tenant}, retry=True)
        return sorted(map(_rows.pause, rows), key=pause_order)

    # control: limits shared by every worker -----------------------------------------

    async def limit_acquire(self, key: str, holder: str, limit: int, hold_for: float) -> bool:
        """Retried after a lost connection: if the first try took the slot, the
        repeat is the holder renewing it and answers ``True`` just the same."""
        params = {"key": key, "holder": holder, "limit": limit, "hold_for": float(hold_for)}
        [(admitted,)] = await self._rows("limit_acquire", params, retry=True)
        return bool(admitted)

    async def limit_release(self, key: str, holder: str) -> None:
        await self._rows("limit_release", {"key": key, "holder": holder}, retry=True)

    async def rate_acquire(self, key: str, limit: int, period: float) -> float:
        """Not retried: a repeat after a lost reply would record a second start
        for one job, or refuse the job the first try admitted.

        A ``limit`` below 1 admits nothing ever, which is a configuration error
        (task options refuse it) and raises rather than return a wait that can
        never end."""
        if limit < 1:
            raise ValueError(f"a rate limit admits at least one start per period, not {limit}")
        params = {"key": key, "limit": limit, "period": float(period)}
        [(wait,)] = await self._rows("rate_acquire", params)
        return float(wait)

    # workers -----------------------------------------------------------------------

    async def worker_beat(self, info: WorkerInfo, ttl: float) -> None:
        await self._rows("worker_beat", _rows.worker_params(info, ttl), retry=True)

    async def worker_list(self) -> list[WorkerInfo]:
        return [_rows.worker(row) for row in await self._rows("worker_list", {}, retry=True)]

    async def worker_remove(self, worker_id: str) -> None:
        await self._rows("worker_remove", {"id": worker_id}, retry=True)

    # schedules ---------------------------------------------------------------------

    async def schedule_upsert(self, schedule: Schedule) -> Schedule:
        params = _rows.schedule_params(schedule)
        [row] = await self._rows("schedule_upsert", params, retry=True)
        return _rows.schedule(row)

    async def schedule_get(self, schedule_id: str, tenant: str) -> Schedule | None:
        params = {"id": schedule_id, "tenant": tenant}
        rows = await self._rows("schedule_get", params, retry=True)
        return _rows.schedule(rows[0]) if rows else None

    async def schedule_list(self, tenant: str | None = None) -> list[Schedule]:
        rows = await self._rows("schedule_list", {"tenant": tenant}, retry=True)
        return [_rows.schedule(row) for row in rows]

    async def schedule_delete(self, schedule_id: str, tenant: str) -> bool:
        params = {"id": schedule_id, "tenant": tenant}
        return bool(await self._rows("schedule_delete", params))

    async def schedule_due(self, before: datetime, limit: int = 100) -> list[Schedule]:
        params = {"before": before, "limit": max(0, limit)}
        return [_rows.schedule(row) for row in await self._rows("schedule_due", params, retry=True)]

    async def schedule_advance(
        self,
        schedule_id: str,
        tenant: str,
        expected: datetime,
        next_run_at: datetime | None,
        job_id: str | None,
    ) -> bool:
        """Not retried: a repeat after a lost reply would find the firing taken
        (by itself) and report ``False``, and the caller would think it lost."""
        params = {
            "id": schedule_id, "tenant": tenant, "expected": expected,
            "next_run_at": next_run_at, "job_id": job_id,
        }  # fmt: skip
        return bool(await self._rows("schedule_advance", params))

    # batches -----------------------------------------------------------------------

    async def batch_create(self, batch: NewBatch) -> Batch:
        [row] = await self._rows("batch_create", _rows.batch_params(batch), retry=True)
        return _rows.batch(row)

    async def batch_get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        rows = await self._rows("batch_get", {"id": batch_id, "tenant": tenant}, retry=True)
        return _rows.batch(rows[0]) if rows else None

    async def batch_list(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        params = {
            "tenant": tenant, "unfinished": unfinished, "before_id": before_id,
            "limit": max(0, limit),
        }  # fmt: skip
        return [_rows.batch(row) for row in await self._rows("batch_list", params, retry=True)]

    async def batch_purge(self, finished_before: datetime) -> int:
        [(count,)] = await self._rows("batch_purge", {"before": finished_before})
        return int(count)

    async def batch_finish(self, batch_id: str, continuation_ids: Sequence[str]) -> bool:
        """Not retried, for the reason ``schedule_advance`` is not: a repeat would
        find the batch finished and report ``False`` to the call that finished it."""
        params = {"id": batch_id, "continuation_ids": list(continuation_ids),
                  "data": Jsonb(ed.batch_finished(batch_id, continuation_ids))}  # fmt: skip
        return bool(await self._rows("batch_finish", params))

    # events ------------------------------------------------------------------------

    async def event_list(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        if not _rows.is_uuid(job_id):
            return []
        params = {"job_id": job_id, "after": after, "limit": max(0, limit)}
        return [_rows.event(row) for row in await self._rows("event_list", params, retry=True)]

    async def event_latest(self, job_id: str) -> Event | None:
        if not _rows.is_uuid(job_id):
            return None
        rows = await self._rows("event_latest", {"job_id": job_id}, retry=True)
        return _rows.event(rows[0]) if rows else None

    async def event_feed(
        self, after: int = 0, tenant: str | None = None, limit: int = 1000
    ) -> list[Event]:
        """Events in id order. Ids come from a sequence, so a transaction that
        commits late can publish an id below one already read: a follower that
        must not miss any should re-read a short window behind its cursor."""
        params = {"after": after, "tenant": tenant, "limit": max(0, limit)}
        return [_rows.event(row) for row in await self._rows("event_feed", params, retry=True)]

    async def event_last_id(self, tenant: str | None = None) -> int:
        """MAX of the primary key: one read of the index's last entry."""
        rows = await self._rows("event_last_id", {}, retry=True)
        return int(rows[0][0])

    # delivery ----------------------------------------------------------------------

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        if self._listener is None:
            self._listener = Listener(self._options.conninfo, self._channel)
        await self._listener.wait(queues, timeout)

    # transitions -------------------------------------------------------------------

    async def _leased(self, t: Transition, lease: Lease, extra: Mapping[str, Any]) -> Job | None:
        """Apply leased transition ``t`` with statement ``job_<t.name>``, which the
        lifecycle renders (``_effects``): refused unless the lease token is current."""
        assert t.leased, f"{t.name} is not fenced by a lease"
        if not _rows.is_uuid(lease.job_id):
            return None
        params = {"id": lease.job_id, "token": lease.token, "sources": _states(t.sources)}
        return await self._one(f"job_{t.name}", params | dict(extra), False)

    async def _one(self, name: str, params: Mapping[str, Any], retry: bool) -> Job | None:
        rows = await self._rows(name, params, retry=retry)
        return _rows.job(rows[0]) if rows else None

    # connections -------------------------------------------------------------------

    async def _rows(self, name: str, params: Mapping[str, Any], *, retry: bool = False) -> Rows:
        query = self._q[name]

        async def run(conn: Conn) -> Rows:
            cur = await conn.execute(query, params, binary=True)
            return await cur.fetchall()

        return await self._with_conn(run, retry=retry, what=name)

    async def _with_conn(self, fn: Callable[[Conn], Awaitable[T]], *, retry: bool, what: str) -> T:
        pool = self._require_pool()
        try:
            return await self._attempt(pool, fn, what)
        except _ConnectionLost as lost:
            if not retry:
                raise BackendError(f"{what}: connection to PostgreSQL lost") from lost.__cause__
        await pool.check()
        try:
            return await self._attempt(pool, fn, what)
        except _ConnectionLost as lost:
            raise BackendError(f"{what}: connection to PostgreSQL lost twice") from lost.__cause__

    async def _attempt(
        self, pool: AsyncConnectionPool[Conn], fn: Callable[[Conn], Awaitable[T]], what: str
    ) -> T:
        try:
            async with pool.connection() as conn:
                return await fn(conn)
        except PoolTimeout as exc:
            raise BackendError(f"{what}: no PostgreSQL connection ({exc})") from exc
        except psycopg.OperationalError as exc:
            raise _ConnectionLost() from exc
        except psycopg.Error as exc:
            raise BackendError(f"{what}: {exc}") from exc

    def _require_pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise BackendError("the PostgreSQL backend is not open: await backend.open() first")
        return self._pool

    async def _check(self, conn: Conn) -> None:
        """Pool check on checkout: free unless the socket has something to say,
        which on an idle connection almost always means the server hung up."""
        if not has_input(conn):
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            # Its siblings were most likely cut by the same restart or kill:
            # sweep them now rather than let the pool hand them out one by one
            # with a growing back-off between tries.
            if self._pool is not None:
                await self._pool.check()
            raise

    def _where(self) -> str:
        d = self.describe()
        return f"{d['host']}:{d['port']}/{d['database']} schema {self._schema}"


class _ConnectionLost(Exception):
    """Internal: the attempt failed on a lost connection; the cause says how."""


async def _configure(conn: Conn) -> None:
    # Timestamps come back as aware datetimes in the session zone: pin it to UTC.
    await conn.execute(b"SET TIME ZONE 'UTC'")


def has_input(conn: psycopg.Connection[Any] | Conn) -> bool:
    """Whether an idle connection's socket has something to say: almost always
    that the server hung up."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


def _states(states: frozenset[State] | set[State]) -> list[str]:
    return sorted(s.value for s in states)


def _failure(error: ErrorInfo) -> dict[str, Any]:
    """What RETRY, FAIL and REJECT are handed: the error to store, and the
    event data ``offload.event_data`` builds from it."""
    return {"error": Jsonb(error.to_dict()), "data": Jsonb(ed.failure(error))}


def _scope_event(tenant: str | None, queue: str | None) -> dict[str, Any]:
    """The parameters of a pause's or a resume's event."""
    return {"event_tenant": ed.pause_tenant(tenant), "data": Jsonb(ed.scope(tenant, queue))}
