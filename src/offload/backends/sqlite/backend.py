"""The embedded default backend: one SQLite file, shared by any number of processes.

Why it is built the way it is:

* ``sqlite3`` connections are not meant to hop threads, and a query must never
  block the event loop, so each instance owns one connection living on one
  dedicated thread; every contract method is one call into that thread running
  one transaction (``jobs`` and ``records`` hold those calls).
* WAL lets readers go on while one writer writes; ``BEGIN IMMEDIATE`` takes the
  write lock before the first read of a write transaction, so worker processes
  sharing the file queue up on ``busy_timeout`` instead of deadlocking on a lock
  upgrade, and two of them can never lease the same job.
* ``synchronous=NORMAL`` in WAL mode survives a crash of the process (``kill -9``);
  ``?synchronous=full`` in the URL adds survival of a power loss at some speed.
* A transition is one statement rendered from the effect fields of its
  ``offload.lifecycle.Transition`` when the SQL is loaded, so the guards and
  the writes cannot drift from the table (``_sql``).
* ``sqlite3`` errors surface as ``BackendError`` naming the call and the file,
  the original chained, like the other backends' driver errors.
* SQLite cannot push between processes: ``wake`` says how a waiter learns of a
  commit of another process.
* Pauses live in a table that is almost always empty; a lease reads it inside its
  own write transaction and adds a tenant filter only for the queues a pause
  touches, so the common lease statement stays exactly the unpaused one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from offload import lifecycle as lc
from offload.backends.base import Backend, QueueCounts, ThreadStore, check_release
from offload.backends.sqlite import _rows, records, wake
from offload.backends.sqlite import jobs as ops
from offload.backends.sqlite._connection import SCHEMA_VERSION, connect, data_version, transaction
from offload.backends.sqlite._url import SQLiteOptions, parse_url
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
from offload.lifecycle import State

P = ParamSpec("P")
T = TypeVar("T")
Conn = sqlite3.Connection


class SQLiteBackend(Backend):
    """Jobs and events in one SQLite file, safe to share between processes."""

    def __init__(self, url: str, *, options: SQLiteOptions | None = None) -> None:
        self.url = url
        self._options = options if options is not None else parse_url(url)
        self._pool: ThreadPoolExecutor | None = None
        self._conn: Conn | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self._commits = wake.CommitWatch(self._options.path, self._options.cross_process_poll)
        self._marks: dict[tuple[str, ...], wake.Mark] = {}

    @property
    def path(self) -> str:
        return self._options.path

    def clone(self) -> SQLiteBackend:
        # The resolved path travels with the clone: a relative URL must not be
        # re-resolved against another working directory.
        return SQLiteBackend(self.url, options=self._options)

    def thread_store(self) -> ThreadStore:
        from offload.backends.sqlite.sync_store import SQLiteThreadStore

        return SQLiteThreadStore(self._options)

    async def open(self) -> None:
        if self._conn is not None:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            self._closed = False
            if self._conn is None:
                await self._connect()

    async def _connect(self) -> None:
        pool = ThreadPoolExecutor(1, thread_name_prefix="offload-sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(pool, connect, self._options)
            await loop.run_in_executor(pool, self._commits.open, conn)
        except (sqlite3.Error, OSError) as exc:
            pool.shutdown(wait=False)
            raise BackendError(f"cannot open the SQLite file {self.path}: {exc}") from exc
        self._conn, self._pool = conn, pool

    async def close(self) -> None:
        pool, conn = self._pool, self._conn
        self._pool = self._conn = None
        self._closed = True
        self._marks.clear()
        self._commits.close()
        if pool is None or conn is None:
            return
        await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        pool.shutdown(wait=False)

    async def now(self) -> datetime:
        return _rows.dt(_rows.now_us())

    def describe(self) -> dict[str, Any]:
        return {
            "backend": type(self).__name__,
            "path": self.path,
            "synchronous": self._options.synchronous,
            "schema_version": SCHEMA_VERSION,
        }

    # running work on the connection's thread -------------------------------------

    async def _run(self, work: Callable[[], T], what: str) -> T:
        # Opened on first use for convenience, but never behind a close():
        # a reopened connection nobody closes again would leak.
        if self._pool is None and not self._closed:
            await self.open()
        if self._pool is None:
            raise BackendError("the SQLite backend was closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        except sqlite3.Error as exc:
            raise BackendError(f"SQLite {what} on {self.path} failed: {exc}") from exc

    async def _write(
        self, fn: Callable[Concatenate[Conn, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        def work() -> T:
            conn = self._connection()
            with transaction(conn):
                return fn(conn, *args, **kwargs)

        return await self._run(work, fn.__name__)

    async def _read(
        self, fn: Callable[Concatenate[Conn, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A read is one statement in autocommit, which SQLite runs as its own
        snapshot; no write lock is taken."""
        return await self._run(lambda: fn(self._connection(), *args, **kwargs), fn.__name__)

    def _connection(self) -> Conn:
        if self._conn is None:
            raise BackendError("the SQLite backend was closed")
        return self._conn

    # jobs --------------------------------------------------------------------------

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        stored = await self._write(ops.enqueue_many, jobs)
        self._wake(j for j in stored if not j.duplicate)
        return stored

    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        """The mark a following ``wait_for_jobs`` on these queues starts from is
        taken under the lease's write lock: no other connection can commit
        between the lease's read and the mark, so no commit falls in a gap."""
        if limit <= 0 or not queues:
            return []

        def lease(conn: Conn) -> list[Job]:
            leased = ops.lease(conn, worker_id, queues, limit, lease_for)
            self._marks[tuple(queues)] = self._commits.mark(conn)
            return leased

        return await self._write(lease)

    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        if not leases:
            return HeartbeatReply()
        return await self._write(ops.heartbeat, leases, lease_for)

    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        if not items:
            return []
        return await self._write(ops.complete_many, items)

    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        return await self._write(ops.fail, lease, error, retry_in)

    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        return await self._write(ops.reject, lease, error)

    async def job_discard(self, lease: Lease, error: ErrorInfo, *, ran: bool) -> Job | None:
        return await self._write(ops.discard, lease, error, ran)

    async def job_requeue(self, lease: Lease, checkpoint: bytes | None) -> Job | None:
        return self._woken(await self._write(ops.requeue, lease, checkpoint))

    async def job_snooze(self, lease: Lease, delay: float, reason: str) -> Job | None:
        """Waiters are woken only when the job is due at once. A snooze happens
        whenever a limit is full, and a wake-up costs every waiter a lease under
        the write lock, so a job due later is found the way a retry is: by the
        worker that snoozed it looking again then, or by the next poll."""
        job = await self._write(ops.snooze, lease, delay, reason)
        return self._woken(job) if delay <= 0 else job

    async def job_cancel(self, job_id: str, tenant: str | None = None) -> Cancellation | None:
        return await self._write(ops.cancel, job_id, tenant)

    async def job_cancels(self, job_ids: Sequence[str]) -> frozenset[str]:
        if not job_ids:
            return frozenset()
        return await self._read(ops.cancels, job_ids)

    async def job_cancel_confirm(self, lease: Lease) -> Job | None:
        return await self._write(ops.cancel_confirm, lease)

    async def job_save_progress(
        self, lease: Lease, checkpoint: bytes | None, progress: float | None, message: str | None
    ) -> bool:
        return await self._write(ops.save_progress, lease, checkpoint, progress, message)

    async def job_redrive(self, job_id: str, tenant: str | None = None) -> Job | None:
        return self._woken(await self._write(ops.redrive, job_id, tenant))

    async def job_release(
        self, job_id: str, transition: lc.Transition, data: dict[str, Any]
    ) -> Job | None:
        check_release(transition)
        return self._woken(await self._write(ops.release, job_id, transition, data))

    async def job_recover_expired(self) -> list[Job]:
        recovered = await self._write(ops.recover_expired)
        self._wake(j for j in recovered if lc.START.allows(j.state))
        return recovered

    async def job_get(self, job_id: str, tenant: str | None = None) -> Job | None:
        return await self._read(ops.get, job_id, tenant)

    async def job_list(self, query: JobQuery) -> list[Job]:
        if query.states is not None and not query.states:
            return []
        return await self._read(ops.list_jobs, query)

    async def job_counts(self, tenant: str | None = None) -> QueueCounts:
        return await self._read(ops.counts, tenant)

    async def job_stats(self, tenant: str | None, queue: str | None) -> list[DayCount]:
        return await self._read(ops.stats, tenant, queue)

    async def job_purge(self, finished_before: datetime, states: Sequence[State]) -> int:
        if not states:
            return 0
        return await self._write(ops.purge, finished_before, states)

    # control: pause and resume ------------------------------------------------------

    async def control_pause(self, tenant: str | None, queue: str | None) -> Pause:
        return await self._write(records.pause, tenant, queue)

    async def control_resume(self, tenant: str | None, queue: str | None) -> bool:
        """A lifted pause wakes the waiters it held back: those of its queue, or
        every waiter when it spanned queues. Other processes see the commit
        through the WAL index."""
        lifted = await self._write(records.resume, tenant, queue)
        if lifted:
            wake.notify(self.path, None if queue is None else (queue,))
        return lifted

    async def control_pauses(self, tenant: str | None = None) -> list[Pause]:
        return await self._read(records.pauses, tenant)

    # control: limits shared by every worker -----------------------------------------

    async def limit_acquire(self, key: str, holder: str, limit: int, hold_for: float) -> bool:
        return await self._write(records.limit_acquire, key, holder, limit, hold_for)

    async def limit_release(self, key: str, holder: str) -> None:
        await self._write(records.limit_release, key, holder)

    async def rate_acquire(self, key: str, limit: int, period: float) -> float:
        return await self._write(records.rate_acquire, key, limit, period)

    # workers -------------------------------------------------------------------------

    async def worker_beat(self, info: WorkerInfo, ttl: float) -> None:
        await self._write(records.worker_beat, info, ttl)

    async def worker_list(self) -> list[WorkerInfo]:
        return await self._read(records.workers)

    async def worker_remove(self, worker_id: str) -> None:
        await self._write(records.worker_remove, worker_id)

    # schedules -----------------------------------------------------------------------

    async def schedule_upsert(self, schedule: Schedule) -> Schedule:
        return await self._write(records.schedule_upsert, schedule)

    async def schedule_get(self, schedule_id: str, tenant: str) -> Schedule | None:
        found = await self._read(records.schedules, "schedule_get", (tenant, schedule_id))
        return found[0] if found else None

    async def schedule_list(self, tenant: str | None = None) -> list[Schedule]:
        if tenant is None:
            return await self._read(records.schedules, "schedule_list", ())
        return await self._read(records.schedules, "schedule_list_of_tenant", (tenant,))

    async def schedule_delete(self, schedule_id: str, tenant: str) -> bool:
        return await self._write(records.schedule_delete, schedule_id, tenant)

    async def schedule_due(self, before: datetime, limit: int = 100) -> list[Schedule]:
        return await self._read(records.schedules, "schedule_due", (_rows.us(before), limit))

    async def schedule_advance(
        self,
        schedule_id: str,
        tenant: str,
        expected: datetime,
        next_run_at: datetime | None,
        job_id: str | None,
    ) -> bool:
        return await self._write(
            records.schedule_advance, schedule_id, tenant, expected, next_run_at, job_id
        )

    # batches -------------------------------------------------------------------------

    async def batch_create(self, batch: NewBatch) -> Batch:
        return await self._write(records.batch_create, batch)

    async def batch_get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        return await self._read(records.batch_get, batch_id, tenant)

    async def batch_list(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        return await self._read(records.batches, tenant, unfinished, before_id, limit)

    async def batch_purge(self, finished_before: datetime) -> int:
        return await self._write(records.batch_purge, finished_before)

    async def batch_finish(self, batch_id: str, continuation_ids: Sequence[str]) -> bool:
        return await self._write(records.batch_finish, batch_id, continuation_ids)

    # events ------------------------------------------------------------------------

    async def event_list(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        return await self._read(ops.events, "events_of_job", (job_id, after, limit))

    async def event_latest(self, job_id: str) -> Event | None:
        found = await self._read(ops.events, "event_latest", (job_id,))
        return found[0] if found else None

    async def event_feed(
        self, after: int = 0, tenant: str | None = None, limit: int = 1000
    ) -> list[Event]:
        return await self._read(ops.events, "event_feed", (after, tenant, limit))

    async def event_last_id(self, tenant: str | None = None) -> int:
        return await self._read(ops.event_last_id)

    # delivery ----------------------------------------------------------------------

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Woken at once by a write of this process; a commit of another process
        is seen through the WAL index (see ``wake``). The wait starts from the
        mark of the last lease on the same queues, so a job committed after that
        lease looked ends it at once."""
        waiter = wake.Waiter(asyncio.get_running_loop(), frozenset(queues))
        wake.register(self.path, waiter)
        try:
            mark = self._marks.pop(tuple(queues), None)
            if mark is None:
                mark = await self._read(self._commits.mark)
            await self._commits.wait(waiter, mark, timeout, self._data_version)
        finally:
            wake.unregister(self.path, waiter)

    async def _data_version(self) -> int | None:
        if self._conn is None:
            return None
        return await self._read(data_version)

    def _wake(self, stored: Iterable[Job]) -> None:
        queues = {job.queue for job in stored}
        if queues:
            wake.notify(self.path, queues)

    def _woken(self, job: Job | None) -> Job | None:
        if job is not None:
            self._wake((job,))
        return job


__all__ = ["SCHEMA_VERSION", "SQLiteBackend"]
