"""The backend contract: storage and delivery of jobs and their events.

Every backend implements these small async methods and passes the one contract
suite in ``tests/contract``; ``memory.py`` is the executable specification. The
rules a method must keep are written once, here and in ``offload.lifecycle``:

* Each job transition is atomic and names a ``lifecycle.Transition``: it happens
  only if the job is in one of the transition's source states and, for a
  ``leased`` transition, only if the caller's lease token is the job's current
  one. A refused transition changes nothing and returns ``None``/``False``.
* Every transition appends its events in the same atomic step, and writes what
  the transition's effect fields say with the values the caller hands in (an
  error, a delay, a checkpoint, event data built by ``offload.event_data``);
  a backend decides none of them itself.
* Time comes from the backend's clock (``now``) so skewed workers cannot expire a
  lease early or start a job before its time.
* ``job_lease`` increments ``attempts`` and issues a fresh lease token; a lease
  that expires is redelivered by ``job_recover_expired`` with the attempt counted.

Backends import only ``offload.job``, ``offload.lifecycle``, ``offload.event_data``
and ``offload.errors``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

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
from offload.lifecycle import DEPENDENCY, State, Transition

QueueCounts = dict[tuple[str, State], int]


def check_release(transition: Transition) -> None:
    """The guard every ``job_release`` starts with."""
    if transition not in DEPENDENCY:
        raise ValueError(f"job_release applies release or cancel_dependent, not {transition.name}")


def pause_order(pause: Pause) -> tuple[bool, str, bool, str]:
    """The order ``control_pauses`` returns: by tenant then queue, ``None`` first."""
    return (pause.tenant is not None, pause.tenant or "", pause.queue is not None,
            pause.queue or "")  # fmt: skip


class ThreadStore(Protocol):
    """Stores new jobs from the calling thread, blocking it, with no event loop:
    what a sync ``enqueue`` uses where the backend has one
    (``Backend.thread_store``). Safe to call from many threads at once."""

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """``Backend.job_enqueue_many``, the same storage and the same answer."""
        ...

    def close(self) -> None: ...


class Backend(ABC):
    """Storage and delivery; one instance belongs to one event loop."""

    url: str

    # lifecycle of the backend itself -------------------------------------------

    async def open(self) -> None:
        """Connect and create the schema if needed; idempotent and cheap once
        open, since the app calls it on every first use in a loop."""

    async def close(self) -> None:
        """Release connections; the stored jobs stay (durable backends)."""

    @abstractmethod
    def clone(self) -> Backend:
        """A new instance on the same storage, for use from another event loop."""

    def thread_store(self) -> ThreadStore | None:
        """A new store for sync enqueues made in the caller's own thread, or
        ``None``: those then run on the bridge loop (``offload._sync``), two
        thread switches that can cost more than the enqueue itself."""
        return None

    @abstractmethod
    async def now(self) -> datetime:
        """The backend's clock, timezone-aware UTC."""

    # jobs -------------------------------------------------------------------------

    @abstractmethod
    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Store jobs (ENQUEUE, or ENQUEUE_LATER when due in the future) in one step.

        A job whose ``unique_key`` matches a not-ended job of the same tenant is not
        stored; the existing job is returned in its place. Job ids are UUID strings
        (time-ordered, version 7); enqueueing an id that exists returns that job.
        A job returned in place of the one asked for has ``duplicate`` set.
        """

    @abstractmethod
    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        """START up to ``limit`` due jobs, taking queues in the given order (the
        first non-empty wins), then higher priority, then earlier ``run_at``, then
        older id. Each leased job gets a new token and ``lease_for`` seconds.
        A job covered by a ``Pause`` is never leased while the pause lasts."""

    @abstractmethod
    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        """Extend live leases by ``lease_for`` from now; report lost ones and
        jobs whose cancellation was requested."""

    @abstractmethod
    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        """SUCCEED each (lease, result); one flag per item: applied or refused."""

    @abstractmethod
    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        """RETRY after ``retry_in`` seconds, or FAIL (dead) when it is ``None``."""

    @abstractmethod
    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        """REJECT: dead without running (unknown task, bad payload)."""

    @abstractmethod
    async def job_discard(self, lease: Lease, error: ErrorInfo, *, ran: bool) -> Job | None:
        """DISCARD (``ran``: its last attempt failed) or DISCARD_REJECTED (it could
        not start): a job of a task without dead letter ends cancelled, error kept."""

    @abstractmethod
    async def job_requeue(self, lease: Lease, checkpoint: bytes | None) -> Job | None:
        """REQUEUE on shutdown: back to queued, attempt not counted, checkpoint kept."""

    @abstractmethod
    async def job_cancel(self, job_id: str, tenant: str | None = None) -> Cancellation | None:
        """CANCEL_WAITING a scheduled/queued job (outcome ``CANCELLED``); for a
        running one set ``cancel_requested`` and append a ``cancel_requested``
        event once (``REQUESTED``; its worker confirms with ``job_cancel_confirm``).
        An ended job is returned unchanged (``ENDED``); ``None`` when there is no
        such job (in that tenant)."""

    @abstractmethod
    async def job_snooze(self, lease: Lease, delay: float, reason: str) -> Job | None:
        """SNOOZE: a limit refused the start; waiting again, due in ``delay``
        seconds, attempt not counted, a ``snoozed`` event with the reason."""

    @abstractmethod
    async def job_cancels(self, job_ids: Sequence[str]) -> frozenset[str]:
        """Which of these jobs have ``cancel_requested`` set: a read-only check the
        worker runs often, so a running job stops soon after a cancel request."""

    @abstractmethod
    async def job_cancel_confirm(self, lease: Lease) -> Job | None:
        """CANCEL_RUNNING: the worker stopped the job after a cancel request."""

    @abstractmethod
    async def job_save_progress(
        self,
        lease: Lease,
        checkpoint: bytes | None,
        progress: float | None,
        message: str | None,
    ) -> bool:
        """Store the checkpoint (when not ``None``) and progress of a running job;
        a progress value appends a ``progress`` event. Fenced by the lease."""

    @abstractmethod
    async def job_redrive(self, job_id: str, tenant: str | None = None) -> Job | None:
        """REDRIVE a dead or cancelled job: queued again, attempts reset to 0.
        Refused (``None``) while another live job holds its ``unique_key``."""

    @abstractmethod
    async def job_release(
        self, job_id: str, transition: Transition, data: dict[str, Any]
    ) -> Job | None:
        """Apply ``transition`` (``lifecycle.RELEASE`` or ``CANCEL_DEPENDENT``,
        anything else raises ``ValueError``) to a dependent job that still waits
        in ``scheduled``, appending its event with ``data`` (built by
        ``event_data.released`` / ``parent_failed``). A compare-and-set on the
        state: of callers racing on one job, one gets the job back, the others
        ``None``. RELEASE makes the job due now and wakes its queue."""

    @abstractmethod
    async def job_recover_expired(self) -> list[Job]:
        """EXPIRE running jobs whose lease has passed (EXPIRE_DEAD when their
        attempts are used up, EXPIRE_DISCARD instead when ``meta`` holds
        ``job.DISCARD_META``); returns the jobs as they now are."""

    @abstractmethod
    async def job_get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or ``None`` if unknown (or of another tenant when one is given)."""

    @abstractmethod
    async def job_list(self, query: JobQuery) -> list[Job]:
        """Jobs matching the query, newest first (ids are time-ordered). A query
        with ``batch_id`` returns that batch's jobs."""

    @abstractmethod
    async def job_counts(self, tenant: str | None = None) -> QueueCounts:
        """Number of jobs per (queue, state); absent pairs are zero."""

    # control: pause and resume --------------------------------------------------

    @abstractmethod
    async def control_pause(self, tenant: str | None, queue: str | None) -> Pause:
        """Stop leasing in a scope (see ``Pause``); idempotent, returns the pause.
        A new pause appends a ``paused`` event (no job; ``event_data.scope``; the
        tenant ``event_data.pause_tenant``) in the same step; a repeat appends none."""

    @abstractmethod
    async def control_resume(self, tenant: str | None, queue: str | None) -> bool:
        """Lift the pause of exactly this scope, appending a ``resumed`` event as
        ``control_pause`` does; ``False`` (and no event) when there was none."""

    @abstractmethod
    async def control_pauses(self, tenant: str | None = None) -> list[Pause]:
        """Pauses in force, or those whose ``tenant`` is the given one, ordered by
        (tenant, queue) with ``None`` first."""

    # control: limits shared by every worker ---------------------------------------

    @abstractmethod
    async def limit_acquire(self, key: str, holder: str, limit: int, hold_for: float) -> bool:
        """Take one of ``limit`` concurrency slots of ``key`` for ``holder`` (a job
        id) for ``hold_for`` seconds. A holder that has a slot renews it (True);
        slots whose time ran out are free again, so a crashed worker's slots return.
        Atomic: concurrent callers never hold more than ``limit`` slots."""

    @abstractmethod
    async def limit_release(self, key: str, holder: str) -> None:
        """Give the slot back; nothing happens when ``holder`` has none."""

    @abstractmethod
    async def rate_acquire(self, key: str, limit: int, period: float) -> float:
        """Admit one start of ``key`` when fewer than ``limit`` were admitted in the
        last ``period`` seconds (a sliding window), returning 0; otherwise admit
        nothing and return the seconds until a start would be admitted."""

    # workers --------------------------------------------------------------------

    @abstractmethod
    async def worker_beat(self, info: WorkerInfo, ttl: float) -> None:
        """Record that the worker is alive, with its current jobs, for ``ttl``
        seconds from now (the backend's clock)."""

    @abstractmethod
    async def worker_list(self) -> list[WorkerInfo]:
        """Workers whose last beat has not yet run out, ordered by id."""

    @abstractmethod
    async def worker_remove(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly."""

    # schedules ------------------------------------------------------------------

    @abstractmethod
    async def schedule_upsert(self, schedule: Schedule) -> Schedule:
        """Create or replace the schedule ``(tenant, id)``; a replace keeps
        ``created_at``, ``last_run_at`` and ``last_job_id``. Returns it as stored."""

    @abstractmethod
    async def schedule_get(self, schedule_id: str, tenant: str) -> Schedule | None: ...

    @abstractmethod
    async def schedule_list(self, tenant: str | None = None) -> list[Schedule]:
        """Schedules ordered by (tenant, id)."""

    @abstractmethod
    async def schedule_delete(self, schedule_id: str, tenant: str) -> bool:
        """Remove it; ``False`` when there was none. Jobs it enqueued stay."""

    @abstractmethod
    async def schedule_due(self, before: datetime, limit: int = 100) -> list[Schedule]:
        """Schedules of every tenant with ``next_run_at <= before``, earliest first."""

    @abstractmethod
    async def schedule_advance(
        self,
        schedule_id: str,
        tenant: str,
        expected: datetime,
        next_run_at: datetime | None,
        job_id: str | None,
    ) -> bool:
        """Compare-and-set: only while ``next_run_at == expected``, move it to the
        given value, set ``last_run_at = expected`` and, when ``job_id`` is given,
        ``last_job_id``. Of workers firing the same schedule at once, one wins."""

    # batches --------------------------------------------------------------------

    @abstractmethod
    async def batch_create(self, batch: NewBatch) -> Batch:
        """Store a batch with no jobs; its jobs are enqueued with ``batch_id`` set.
        Creating an id that exists returns the stored batch."""

    @abstractmethod
    async def batch_get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        """The batch with its jobs counted per state (``None`` if unknown, or of
        another tenant when one is given)."""

    @abstractmethod
    async def batch_list(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        """Batches newest first (ids are time-ordered), counted like ``batch_get``;
        ``unfinished`` keeps those whose ``finished_at`` is not set."""

    @abstractmethod
    async def batch_finish(self, batch_id: str, continuation_ids: Sequence[str]) -> bool:
        """Set ``finished_at`` (and record the continuation jobs) once, appending
        a ``batch_finished`` event of the batch's tenant (no job;
        ``event_data.batch_finished``); ``False`` when the batch was already
        finished or does not exist."""

    # events -------------------------------------------------------------------

    @abstractmethod
    async def event_list(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        """Events of one job with ``id > after``, oldest first."""

    @abstractmethod
    async def event_latest(self, job_id: str) -> Event | None:
        """The job's most recent event in one call."""

    @abstractmethod
    async def event_feed(
        self, after: int = 0, tenant: str | None = None, limit: int = 1000
    ) -> list[Event]:
        """Events of all jobs (of one tenant when given, with the control events
        of ``job.EVERY_TENANT``) with ``id > after``, oldest first: what live
        streams and dashboards follow. Event ids increase across
        the whole backend, so ``after`` is a resumable cursor. (Where ids come from
        a sequence, a transaction that commits late can publish an id below one a
        reader has seen; a stream that must not miss one re-reads a short window.)"""

    async def event_last_id(self, tenant: str | None = None) -> int:
        """Where a follower without a cursor starts: an id at or after the newest
        event (of ``tenant`` when given; the whole backend's newest is allowed,
        since every later event is new either way), ``0`` when there is none.

        This default probes ``event_feed`` for ``id > n`` one row at a time,
        doubling ``n`` and then bisecting: a few dozen one-row reads on the id
        index however long the feed is. A backend that can read its newest id in
        one indexed read overrides it."""

        async def beyond(n: int) -> bool:
            return bool(await self.event_feed(n, None, 1))

        if not await beyond(0):
            return 0
        low, high = 0, 1
        while await beyond(high):
            low, high = high, high * 2
        while high - low > 1:  # an event lies beyond low, none beyond high
            middle = (low + high) // 2
            low, high = (middle, high) if await beyond(middle) else (low, middle)
        return high

    # delivery -----------------------------------------------------------------

    @abstractmethod
    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        """Return when a job may have become leasable in ``queues``, or after
        ``timeout`` seconds. Reactive where the storage can push; a false wake-up
        is allowed, a missed one only costs up to ``timeout``."""

    async def job_lease_on_wake(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float, timeout: float
    ) -> list[Job]:
        """Wait like ``wait_for_jobs``, then lease like ``job_lease``: what an idle
        worker does. A backend whose wake-up is itself a server round trip (a
        blocking pop) overrides it to lease in that same trip. The worker never
        cancels this call half way, since the jobs it leased would be lost with
        it; ``interrupt_wait`` ends the wait early instead, and then nothing is
        leased (the worker's next fetch leases as usual)."""
        interrupted = self._wake_interrupt()
        waiting = asyncio.ensure_future(self.wait_for_jobs(queues, timeout))
        stopped = asyncio.ensure_future(interrupted.wait())
        try:
            await asyncio.wait((waiting, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            stopped.cancel()
        if interrupted.is_set():
            interrupted.clear()
            return []
        return await self.job_lease(worker_id, queues, limit, lease_for)

    async def interrupt_wait(self) -> None:
        """End a ``job_lease_on_wake`` of this instance that is waiting now."""
        self._wake_interrupt().set()

    def _wake_interrupt(self) -> asyncio.Event:
        found: asyncio.Event | None = self.__dict__.get("_wake_interrupted")
        if found is None:
            found = self.__dict__["_wake_interrupted"] = asyncio.Event()
        return found

    # maintenance --------------------------------------------------------------

    @abstractmethod
    async def job_purge(self, finished_before: datetime, states: Sequence[State]) -> int:
        """Delete ended jobs in ``states`` that finished before the given time,
        with their events, and control events (no job) older than that time;
        returns how many jobs went."""

    @abstractmethod
    async def job_stats(self, tenant: str | None, queue: str | None) -> list[DayCount]:
        """Ended jobs per queue, UTC day of ``finished_at`` and end state, over all
        time: the counts ``job_purge`` kept of the jobs it deleted (in the same
        atomic step as the delete) plus the ended jobs still stored. ``None``
        means every tenant (or queue). A (queue, day, outcome) may come in several
        rows; readers sum them (``offload.stats``)."""

    @abstractmethod
    async def batch_purge(self, finished_before: datetime) -> int:
        """Delete batches that finished before the given time and have no job
        left (their jobs were purged); returns how many went."""

    def describe(self) -> dict[str, Any]:
        """Facts for humans (CLI, dashboard); never secrets."""
        return {"backend": type(self).__name__}
