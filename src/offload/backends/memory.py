"""In-process storage: the executable specification of the backend contract.

Everything is lost when the process exits; use it for tests and demos. One
``MemoryStore`` is shared by the clones of a backend (one per event loop), guarded
by a lock, so a sync enqueue from another thread lands in the same queues.

Over 600 lines on purpose: as the specification it is read side by side with
``base.py``, one method per contract method in the same order, and splitting it
would scatter what a new backend must match.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import heapq
import itertools
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.base import Backend, QueueCounts, check_release, pause_order
from offload.job import (
    DISCARD_META,
    EVERY_TENANT,
    Batch,
    Cancellation,
    CancelOutcome,
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
from offload.lifecycle import ErrorEffect, EventKind, LeaseEffect, RunAt, State, Transition

# heap entry: (-priority, run_at timestamp, job id, version)
_Entry = tuple[int, float, str, int]


@dataclass
class MemoryStore:
    jobs: dict[str, Job] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=dict)
    feed: list[Event] = field(default_factory=list)
    ready: dict[str, list[_Entry]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    unique: dict[tuple[str, str], str] = field(default_factory=dict)
    event_seq: int = 0
    pauses: dict[tuple[str | None, str | None], Pause] = field(default_factory=dict)
    schedules: dict[tuple[str, str], Schedule] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    # (tenant, queue, UTC day, end state) -> jobs purged so far
    stats: dict[tuple[str, str, date, State], int] = field(default_factory=dict)
    slots: dict[str, dict[str, datetime]] = field(default_factory=dict)  # key -> holder -> until
    starts: dict[str, list[datetime]] = field(default_factory=dict)  # key -> admitted starts
    workers: dict[str, tuple[WorkerInfo, datetime]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)


class MemoryBackend(Backend):
    def __init__(self, url: str = "memory://", store: MemoryStore | None = None) -> None:
        self.url = url
        self._s = store if store is not None else MemoryStore()

    def clone(self) -> MemoryBackend:
        return MemoryBackend(self.url, self._s)

    async def now(self) -> datetime:
        return _now()

    # jobs ------------------------------------------------------------------------

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        now = _now()
        with self._s.lock:
            out = [self._enqueue_one(new, now) for new in jobs]
        self._notify()
        return out

    def _enqueue_one(self, new: NewJob, now: datetime) -> Job:
        if new.id in self._s.jobs:
            return _duplicate(self._s.jobs[new.id])
        if new.unique_key is not None:
            existing = self._live_unique(new.tenant, new.unique_key)
            if existing is not None:
                return _duplicate(existing)
        run_at = new.run_at or now + timedelta(seconds=new.delay)
        later = run_at > now
        job = Job(
            id=new.id, task=new.task, queue=new.queue, tenant=new.tenant,
            state=State.SCHEDULED if later else State.QUEUED, payload=new.payload,
            priority=new.priority, attempts=0, max_attempts=new.max_attempts,
            created_at=now, run_at=run_at, timeout=new.timeout,
            unique_key=new.unique_key, batch_id=new.batch_id, meta=copy.deepcopy(new.meta),
        )  # fmt: skip
        self._s.jobs[job.id] = job
        if new.unique_key is not None:
            self._s.unique[(new.tenant, new.unique_key)] = job.id
        self._apply(job, lc.ENQUEUE_LATER if later else lc.ENQUEUE, now, {})
        return _snapshot(job)

    def _live_unique(self, tenant: str, key: str) -> Job | None:
        job_id = self._s.unique.get((tenant, key))
        job = self._s.jobs.get(job_id) if job_id else None
        return job if job is not None and not job.ended else None

    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        now = _now()
        leased: list[Job] = []
        with self._s.lock:
            if (None, None) in self._s.pauses:
                return []
            for queue in queues:
                for job in self._pop_due(queue, now, limit - len(leased)):
                    self._start(job, worker_id, now, lease_for)
                    leased.append(_snapshot(job))
                if len(leased) >= limit:
                    break
        return leased

    def _pop_due(self, queue: str, now: datetime, limit: int) -> Iterator[Job]:
        heap = self._s.ready.get(queue, [])
        not_due: list[_Entry] = []
        taken = 0
        while heap and taken < limit:
            entry = heapq.heappop(heap)
            job = self._s.jobs.get(entry[2])
            if job is None or self._s.versions.get(job.id) != entry[3]:
                continue  # superseded entry
            if not lc.START.allows(job.state):
                continue
            if job.run_at > now or self._paused(job):
                not_due.append(entry)
                continue
            taken += 1
            yield job
        for entry in not_due:
            heapq.heappush(heap, entry)

    def _paused(self, job: Job) -> bool:
        return any(p.covers(job.tenant, job.queue) for p in self._s.pauses.values())

    def _start(self, job: Job, worker_id: str, now: datetime, lease_for: float) -> None:
        self._apply(job, lc.START, now, {}, worker_id=worker_id, seconds=lease_for)

    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        now = _now()
        lost: set[str] = set()
        cancel: set[str] = set()
        with self._s.lock:
            for lease in leases:
                job = self._leased(lease)
                if job is None:
                    lost.add(lease.job_id)
                    continue
                job.lease_expires_at = now + timedelta(seconds=lease_for)
                if job.cancel_requested:
                    cancel.add(job.id)
        return HeartbeatReply(frozenset(lost), frozenset(cancel))

    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        now = _now()
        with self._s.lock:
            return [self._complete(lease, result, now) for lease, result in items]

    def _complete(self, lease: Lease, result: bytes | None, now: datetime) -> bool:
        job = self._guard(lc.SUCCEED, lease)
        if job is None:
            return False
        self._apply(job, lc.SUCCEED, now, {}, result=result)
        return True

    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        now = _now()
        transition = lc.FAIL if retry_in is None else lc.RETRY
        with self._s.lock:
            job = self._guard(transition, lease)
            if job is None:
                return None
            self._apply(job, transition, now, ed.failure(error), error=error, seconds=retry_in)
            return _snapshot(job)

    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        now = _now()
        with self._s.lock:
            job = self._guard(lc.REJECT, lease)
            if job is None:
                return None
            self._apply(job, lc.REJECT, now, ed.failure(error), error=error)
            return _snapshot(job)

    async def job_discard(self, lease: Lease, error: ErrorInfo, *, ran: bool) -> Job | None:
        now = _now()
        transition = lc.DISCARD if ran else lc.DISCARD_REJECTED
        with self._s.lock:
            job = self._guard(transition, lease)
            if job is None:
                return None
            self._apply(job, transition, now, ed.failure(error), error=error)
            return _snapshot(job)

    async def job_requeue(self, lease: Lease, checkpoint: bytes | None) -> Job | None:
        now = _now()
        with self._s.lock:
            job = self._guard(lc.REQUEUE, lease)
            if job is None:
                return None
            self._apply(job, lc.REQUEUE, now, {}, checkpoint=checkpoint)
            out = _snapshot(job)
        self._notify()
        return out

    async def job_snooze(self, lease: Lease, delay: float, reason: str) -> Job | None:
        now = _now()
        with self._s.lock:
            job = self._guard(lc.SNOOZE, lease)
            if job is None:
                return None
            self._apply(job, lc.SNOOZE, now, ed.snoozed(delay, reason), seconds=delay)
            out = _snapshot(job)
        self._notify()
        return out

    async def job_cancel(self, job_id: str, tenant: str | None = None) -> Cancellation | None:
        now = _now()
        with self._s.lock:
            job = self._visible(job_id, tenant)
            if job is None:
                return None
            if lc.CANCEL_WAITING.allows(job.state):
                self._apply(job, lc.CANCEL_WAITING, now, {})
                outcome = CancelOutcome.CANCELLED
            elif job.state is State.RUNNING:
                if not job.cancel_requested:
                    job.cancel_requested = True
                    self._event(job, EventKind.CANCEL_REQUESTED, now, {})
                outcome = CancelOutcome.REQUESTED
            else:
                outcome = CancelOutcome.ENDED
            return Cancellation(_snapshot(job), outcome)

    async def job_cancels(self, job_ids: Sequence[str]) -> frozenset[str]:
        with self._s.lock:
            jobs = (self._s.jobs.get(i) for i in job_ids)
            return frozenset(j.id for j in jobs if j is not None and j.cancel_requested)

    async def job_cancel_confirm(self, lease: Lease) -> Job | None:
        now = _now()
        with self._s.lock:
            job = self._guard(lc.CANCEL_RUNNING, lease)
            if job is None:
                return None
            self._apply(job, lc.CANCEL_RUNNING, now, {})
            return _snapshot(job)

    async def job_save_progress(
        self, lease: Lease, checkpoint: bytes | None, progress: float | None, message: str | None
    ) -> bool:
        now = _now()
        with self._s.lock:
            job = self._leased(lease)
            if job is None:
                return False
            if checkpoint is not None:
                job.checkpoint_data = checkpoint
            if progress is not None:
                job.progress, job.progress_message = progress, message
                self._event(job, EventKind.PROGRESS, now, ed.progress(progress, message))
            return True

    async def job_redrive(self, job_id: str, tenant: str | None = None) -> Job | None:
        now = _now()
        with self._s.lock:
            job = self._visible(job_id, tenant)
            if job is None or not lc.REDRIVE.allows(job.state):
                return None
            if job.unique_key is not None and self._live_unique(job.tenant, job.unique_key):
                return None
            if job.unique_key is not None:
                self._s.unique[(job.tenant, job.unique_key)] = job.id
            self._apply(job, lc.REDRIVE, now, {})
            out = _snapshot(job)
        self._notify()
        return out

    async def job_release(
        self, job_id: str, transition: Transition, data: dict[str, Any]
    ) -> Job | None:
        check_release(transition)
        now = _now()
        with self._s.lock:
            job = self._s.jobs.get(job_id)
            if job is None or not transition.allows(job.state):
                return None
            self._apply(job, transition, now, data)
            out = _snapshot(job)
        self._notify()
        return out

    async def job_recover_expired(self) -> list[Job]:
        now = _now()
        out: list[Job] = []
        with self._s.lock:
            for job in list(self._s.jobs.values()):
                if job.state is not State.RUNNING or job.lease_expires_at is None:
                    continue
                if job.lease_expires_at > now:
                    continue
                if job.cancel_requested:
                    self._apply(job, lc.EXPIRE_CANCELLED, now, {})
                elif job.attempts >= job.max_attempts:
                    last = lc.EXPIRE_DISCARD if job.meta.get(DISCARD_META) else lc.EXPIRE_DEAD
                    self._apply(job, last, now, {}, error=ed.LEASE_EXPIRED)
                else:
                    self._apply(job, lc.EXPIRE, now, {})
                out.append(_snapshot(job))
        if out:
            self._notify()
        return out

    async def job_get(self, job_id: str, tenant: str | None = None) -> Job | None:
        with self._s.lock:
            job = self._visible(job_id, tenant)
            return _snapshot(job) if job is not None else None

    async def job_list(self, query: JobQuery) -> list[Job]:
        # Copy only the page: a batch of thousands is read page by page.
        with self._s.lock:
            jobs = [j for j in self._s.jobs.values() if _matches(j, query)]
            jobs.sort(key=lambda j: j.id, reverse=True)
            return [_snapshot(j) for j in jobs[: query.limit]]

    async def job_counts(self, tenant: str | None = None) -> QueueCounts:
        counts: QueueCounts = {}
        with self._s.lock:
            for job in self._s.jobs.values():
                if tenant is None or job.tenant == tenant:
                    key = (job.queue, job.state)
                    counts[key] = counts.get(key, 0) + 1
        return counts

    async def job_purge(self, finished_before: datetime, states: Sequence[State]) -> int:
        wanted = set(states) & lc.ENDED
        with self._s.lock:
            doomed = [
                j.id for j in self._s.jobs.values()
                if j.state in wanted and j.finished_at is not None
                and j.finished_at < finished_before
            ]  # fmt: skip
            for job_id in doomed:
                _tally(self._s.stats, self._s.jobs[job_id])
                del self._s.jobs[job_id]
                self._s.events.pop(job_id, None)
                self._s.versions.pop(job_id, None)
            gone = set(doomed)
            self._s.feed = [e for e in self._s.feed if not _purged(e, gone, finished_before)]
            if doomed:
                self._s.unique = {k: v for k, v in self._s.unique.items() if v not in gone}
        return len(doomed)

    async def job_stats(self, tenant: str | None, queue: str | None) -> list[DayCount]:
        with self._s.lock:
            live: dict[tuple[str, str, date, State], int] = {}
            for job in self._s.jobs.values():
                _tally(live, job)
            return [
                DayCount(q, day, outcome, n)
                for tally in (self._s.stats, live)
                for (t, q, day, outcome), n in tally.items()
                if tenant in (None, t) and queue in (None, q)
            ]

    # control -------------------------------------------------------------------

    async def control_pause(self, tenant: str | None, queue: str | None) -> Pause:
        with self._s.lock:
            found = self._s.pauses.get((tenant, queue))
            if found is not None:
                return found
            pause = self._s.pauses[(tenant, queue)] = Pause(tenant, queue, _now())
            self._control_event(ed.pause_tenant(tenant), EventKind.PAUSED, ed.scope(tenant, queue))
            return pause

    async def control_resume(self, tenant: str | None, queue: str | None) -> bool:
        with self._s.lock:
            lifted = self._s.pauses.pop((tenant, queue), None) is not None
            if lifted:
                self._control_event(ed.pause_tenant(tenant), EventKind.RESUMED,
                                    ed.scope(tenant, queue))  # fmt: skip
        if lifted:
            self._notify()
        return lifted

    async def control_pauses(self, tenant: str | None = None) -> list[Pause]:
        with self._s.lock:
            pauses = [p for p in self._s.pauses.values() if tenant is None or p.tenant == tenant]
        return sorted(pauses, key=pause_order)

    async def limit_acquire(self, key: str, holder: str, limit: int, hold_for: float) -> bool:
        now = _now()
        with self._s.lock:
            held = self._s.slots.setdefault(key, {})
            for other, until in list(held.items()):
                if until <= now:
                    del held[other]
            if holder not in held and len(held) >= limit:
                return False
            held[holder] = now + timedelta(seconds=hold_for)
            return True

    async def limit_release(self, key: str, holder: str) -> None:
        with self._s.lock:
            self._s.slots.get(key, {}).pop(holder, None)

    async def rate_acquire(self, key: str, limit: int, period: float) -> float:
        now = _now()
        window = timedelta(seconds=period)
        with self._s.lock:
            starts = [t for t in self._s.starts.get(key, []) if t > now - window]
            self._s.starts[key] = starts
            if len(starts) < limit:
                starts.append(now)
                return 0.0
            return max(0.0, (starts[-limit] + window - now).total_seconds())

    # workers -------------------------------------------------------------------

    async def worker_beat(self, info: WorkerInfo, ttl: float) -> None:
        now = _now()
        with self._s.lock:
            stored = copy.deepcopy(info)
            stored.last_seen_at = now
            self._s.workers[info.id] = (stored, now + timedelta(seconds=ttl))

    async def worker_list(self) -> list[WorkerInfo]:
        now = _now()
        with self._s.lock:
            alive = [copy.deepcopy(w) for w, until in self._s.workers.values() if until > now]
        return sorted(alive, key=lambda w: w.id)

    async def worker_remove(self, worker_id: str) -> None:
        with self._s.lock:
            self._s.workers.pop(worker_id, None)

    # schedules -----------------------------------------------------------------

    async def schedule_upsert(self, schedule: Schedule) -> Schedule:
        now = _now()
        with self._s.lock:
            stored = copy.deepcopy(schedule)
            old = self._s.schedules.get((schedule.tenant, schedule.id))
            stored.created_at = old.created_at if old else now
            stored.last_run_at = old.last_run_at if old else None
            stored.last_job_id = old.last_job_id if old else None
            stored.updated_at = now
            self._s.schedules[(schedule.tenant, schedule.id)] = stored
            return copy.deepcopy(stored)

    async def schedule_get(self, schedule_id: str, tenant: str) -> Schedule | None:
        with self._s.lock:
            found = self._s.schedules.get((tenant, schedule_id))
            return copy.deepcopy(found) if found else None

    async def schedule_list(self, tenant: str | None = None) -> list[Schedule]:
        with self._s.lock:
            return [
                copy.deepcopy(s) for key, s in sorted(self._s.schedules.items())
                if tenant is None or key[0] == tenant
            ]  # fmt: skip

    async def schedule_delete(self, schedule_id: str, tenant: str) -> bool:
        with self._s.lock:
            return self._s.schedules.pop((tenant, schedule_id), None) is not None

    async def schedule_due(self, before: datetime, limit: int = 100) -> list[Schedule]:
        with self._s.lock:
            due = [
                s for s in self._s.schedules.values()
                if s.next_run_at is not None and s.next_run_at <= before
            ]  # fmt: skip
            due.sort(key=lambda s: (s.next_run_at, s.tenant, s.id))
            return [copy.deepcopy(s) for s in due[:limit]]

    async def schedule_advance(
        self,
        schedule_id: str,
        tenant: str,
        expected: datetime,
        next_run_at: datetime | None,
        job_id: str | None,
    ) -> bool:
        with self._s.lock:
            found = self._s.schedules.get((tenant, schedule_id))
            if found is None or found.next_run_at != expected:
                return False
            found.next_run_at = next_run_at
            found.last_run_at = expected
            if job_id is not None:
                found.last_job_id = job_id
            return True

    # batches -------------------------------------------------------------------

    async def batch_create(self, batch: NewBatch) -> Batch:
        with self._s.lock:
            if batch.id not in self._s.batches:
                self._s.batches[batch.id] = Batch(
                    id=batch.id, tenant=batch.tenant, created_at=_now(), name=batch.name,
                    then=batch.then, meta=copy.deepcopy(batch.meta),
                )  # fmt: skip
            return self._counted(self._s.batches[batch.id])

    async def batch_get(self, batch_id: str, tenant: str | None = None) -> Batch | None:
        with self._s.lock:
            found = self._s.batches.get(batch_id)
            if found is None or (tenant is not None and found.tenant != tenant):
                return None
            return self._counted(found)

    async def batch_list(
        self,
        tenant: str | None = None,
        *,
        unfinished: bool = False,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Batch]:
        with self._s.lock:
            picked = [
                b for b in self._s.batches.values()
                if (tenant is None or b.tenant == tenant)
                and (not unfinished or b.finished_at is None)
                and (before_id is None or b.id < before_id)
            ]  # fmt: skip
            picked.sort(key=lambda b: b.id, reverse=True)
            return [self._counted(b) for b in picked[:limit]]

    async def batch_finish(self, batch_id: str, continuation_ids: Sequence[str]) -> bool:
        with self._s.lock:
            found = self._s.batches.get(batch_id)
            if found is None or found.finished_at is not None:
                return False
            found.finished_at = _now()
            found.continuation_ids = list(continuation_ids)
            self._control_event(found.tenant, EventKind.BATCH_FINISHED,
                                ed.batch_finished(batch_id, continuation_ids))  # fmt: skip
            return True

    async def batch_purge(self, finished_before: datetime) -> int:
        with self._s.lock:
            kept = {j.batch_id for j in self._s.jobs.values() if j.batch_id is not None}
            doomed = [
                b.id for b in self._s.batches.values()
                if b.finished_at is not None and b.finished_at < finished_before
                and b.id not in kept
            ]  # fmt: skip
            for batch_id in doomed:
                del self._s.batches[batch_id]
        return len(doomed)

    def _counted(self, batch: Batch) -> Batch:
        counts: dict[State, int] = {}
        for job in self._s.jobs.values():
            if job.batch_id == batch.id:
                counts[job.state] = counts.get(job.state, 0) + 1
        out = copy.deepcopy(batch)
        out.counts = counts
        return out

    # events --------------------------------------------------------------------

    async def event_list(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        with self._s.lock:
            return [e for e in self._s.events.get(job_id, []) if e.id > after][:limit]

    async def event_latest(self, job_id: str) -> Event | None:
        with self._s.lock:
            events = self._s.events.get(job_id)
            return events[-1] if events else None

    async def event_feed(
        self, after: int = 0, tenant: str | None = None, limit: int = 1000
    ) -> list[Event]:
        with self._s.lock:
            start = bisect.bisect_right(self._s.feed, after, key=lambda e: e.id)
            picked = (e for e in self._s.feed[start:]
                      if tenant is None or e.tenant in (tenant, EVERY_TENANT))  # fmt: skip
            return list(itertools.islice(picked, limit))

    async def event_last_id(self, tenant: str | None = None) -> int:
        with self._s.lock:
            return self._s.feed[-1].id if self._s.feed else 0

    # delivery ------------------------------------------------------------------

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._s.lock:
            self._s.waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._s.lock:
                self._s.waiters.discard(waiter)

    def _notify(self) -> None:
        with self._s.lock:
            waiters = list(self._s.waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    # the transition primitives every method above goes through -----------------

    def _visible(self, job_id: str, tenant: str | None) -> Job | None:
        job = self._s.jobs.get(job_id)
        if job is None or (tenant is not None and job.tenant != tenant):
            return None
        return job

    def _leased(self, lease: Lease) -> Job | None:
        job = self._s.jobs.get(lease.job_id)
        if job is None or job.state is not State.RUNNING or job.lease_token != lease.token:
            return None
        return job

    def _guard(self, transition: Transition, lease: Lease) -> Job | None:
        job = self._leased(lease) if transition.leased else self._s.jobs.get(lease.job_id)
        return job if job is not None and transition.allows(job.state) else None

    def _apply(
        self,
        job: Job,
        t: Transition,
        now: datetime,
        handed: Mapping[str, Any],
        *,
        worker_id: str | None = None,
        seconds: float | None = None,
        error: ErrorInfo | None = None,
        result: bytes | None = None,
        checkpoint: bytes | None = None,
    ) -> None:
        """Write what transition ``t``'s effect fields say, with the values handed
        in, then append its events: the one place a job changes state here.
        ``seconds`` is the lease length for GRANT and the delay for ``RunAt.AFTER``."""
        holder = worker_id if t.lease is LeaseEffect.GRANT else job.worker_id
        job.state = t.target
        job.attempts = lc.count_attempts(t.attempts, job.attempts)
        if t.run_at is RunAt.NOW:
            job.run_at = now
        elif t.run_at is RunAt.AFTER:
            job.run_at = now + timedelta(seconds=seconds or 0.0)
        self._apply_lease(job, t.lease, now, worker_id, seconds)
        _apply_outcome(job, t, now, error, result, checkpoint)
        data = ed.stamped(t, dict(handed), attempts=job.attempts, worker_id=holder,
                          run_at=job.run_at)  # fmt: skip
        for kind in t.events:
            self._event(job, kind, now, data)
        if t.waits:
            self._push_ready(job)

    def _apply_lease(
        self, job: Job, effect: LeaseEffect, now: datetime, worker_id: str | None,
        seconds: float | None,
    ) -> None:  # fmt: skip
        if effect is LeaseEffect.GRANT:
            job.worker_id = worker_id
            job.lease_token = uuid.uuid4().hex
            job.lease_expires_at = now + timedelta(seconds=seconds or 0.0)
            job.started_at = now
        elif effect is LeaseEffect.DROP:
            job.lease_token = job.lease_expires_at = job.worker_id = None
            job.cancel_requested = False

    def _push_ready(self, job: Job) -> None:
        version = self._s.versions.get(job.id, 0) + 1
        self._s.versions[job.id] = version
        entry = (-job.priority, job.run_at.timestamp(), job.id, version)
        heapq.heappush(self._s.ready.setdefault(job.queue, []), entry)

    def _event(self, job: Job, kind: EventKind, now: datetime, data: Mapping[str, Any]) -> None:
        self._s.event_seq += 1
        event = Event(self._s.event_seq, job.id, job.tenant, kind, now, dict(data))
        self._s.events.setdefault(job.id, []).append(event)
        self._s.feed.append(event)

    def _control_event(self, tenant: str, kind: EventKind, data: Mapping[str, Any]) -> None:
        """An event of no job, on the feed only: called with the lock held."""
        self._s.event_seq += 1
        self._s.feed.append(Event(self._s.event_seq, None, tenant, kind, _now(), dict(data)))


def _now() -> datetime:
    return datetime.now(UTC)


def _purged(event: Event, gone: set[str], before: datetime) -> bool:
    if event.job_id is None:
        return event.at < before
    return event.job_id in gone


def _apply_outcome(
    job: Job,
    t: Transition,
    now: datetime,
    error: ErrorInfo | None,
    result: bytes | None,
    checkpoint: bytes | None,
) -> None:
    if t.error is ErrorEffect.SET:
        job.error = error
    elif t.error is ErrorEffect.CLEAR:
        job.error = None
    if t.sets_finished:
        job.finished_at = now
    elif t.clears_finished:
        job.finished_at = None
    if t.stores_result:
        job.result_data = result
    if t.stores_checkpoint and checkpoint is not None:
        job.checkpoint_data = checkpoint


def _duplicate(job: Job) -> Job:
    snap = _snapshot(job)
    snap.duplicate = True
    return snap


def _snapshot(job: Job) -> Job:
    """A copy the caller may change freely, as a job read back from any other
    backend's storage would be; ``meta`` is the one mutable nested field."""
    snap = copy.copy(job)
    snap.meta = copy.deepcopy(job.meta)
    return snap


def _tally(tally: dict[tuple[str, str, date, State], int], job: Job) -> None:
    """Count an ended job under its tenant, queue, UTC day and end state."""
    if job.state in lc.ENDED and job.finished_at is not None:
        key = (job.tenant, job.queue, job.finished_at.astimezone(UTC).date(), job.state)
        tally[key] = tally.get(key, 0) + 1


def _matches(job: Job, q: JobQuery) -> bool:
    return (
        (q.tenant is None or job.tenant == q.tenant)
        and (q.states is None or job.state in q.states)
        and (q.queue is None or job.queue == q.queue)
        and (q.task is None or job.task == q.task)
        and (q.before_id is None or job.id < q.before_id)
        and (q.batch_id is None or job.batch_id == q.batch_id)
    )


__all__ = ["MemoryBackend", "MemoryStore"]
