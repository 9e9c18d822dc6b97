"""``AzureBackend``: the contract over Tables (state) and Storage Queues
(delivery signals). The package docstring says how and why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.azure import codec
from offload.backends.azure._url import parse
from offload.backends.azure.apply import NOTHING, Handed, apply
from offload.backends.azure.clients import Clients
from offload.backends.azure.delivery import Doorbell
from offload.backends.azure.records import Records
from offload.backends.azure.store import JobStore, Stored
from offload.backends.base import QueueCounts
from offload.job import (
    Cancellation,
    CancelOutcome,
    ErrorInfo,
    Event,
    HeartbeatReply,
    Job,
    JobQuery,
    Lease,
    NewJob,
)
from offload.lifecycle import EventKind, State, Transition

_CAS_TRIES = 20
Items = list[tuple[EventKind, dict[str, Any]]]


class AzureBackend(Records):
    def __init__(self, url: str = "azure://") -> None:
        self.url = url
        self._target = parse(url)
        self._c = Clients(self._target)
        self._store = JobStore(self._c)
        self._bell = Doorbell(self._c)
        self._opened = False

    @property
    def ops(self) -> Any:
        """Storage requests made by this instance, per service (``table``/``queue``)."""
        return self._c.ops

    def clone(self) -> AzureBackend:
        return AzureBackend(self.url)

    async def open(self) -> None:
        if not self._opened:
            await self._c.create_tables()
            self._opened = True

    async def close(self) -> None:
        await self._c.close()
        self._c = Clients(self._target)
        self._store = JobStore(self._c)
        self._bell = Doorbell(self._c)
        self._opened = False

    def describe(self) -> dict[str, Any]:
        return {"backend": type(self).__name__, "url": self._target.safe_url,
                "prefix": self._target.prefix}  # fmt: skip

    async def now(self) -> datetime:
        return _now()

    # writing a transition -------------------------------------------------------

    async def _events(self, job: Job, now: datetime,
                      items: list[tuple[EventKind, dict[str, Any]]]) -> list[Event]:  # fmt: skip
        if not items:
            return []
        first = await self._store.next_event_ids(len(items))
        return [Event(first + n, job.id, job.tenant, kind, now, data)
                for n, (kind, data) in enumerate(items)]  # fmt: skip

    async def _write(
        self, before: Stored | None, job: Job, now: datetime, items: Items, waits: bool
    ) -> Stored | None:
        events = await self._events(job, now, items)
        done = await self._store.commit(before, job, events, waits)
        if done is not None and waits and (before is None or not before.ready):
            await self._bell.ring(job, now)
        return done

    async def _transit(
        self, job_id: str, t: Transition, h: Handed = NOTHING, *,
        token: str | None = None, check: Any = None,
    ) -> Job | None:  # fmt: skip
        """Apply ``t`` to the job if it is in a source state (and, for a leased
        transition, still under ``token``; and ``check(job)`` when given), as a
        compare-and-set: a lost race re-reads and decides again."""
        for _ in range(_CAS_TRIES):
            stored = await self._store.read(job_id)
            if stored is None or not t.allows(stored.job.state):
                return None
            if t.leased and stored.job.lease_token != token:
                return None
            if check is not None and not check(stored.job):
                return None
            now = _now()
            job, items = apply(stored.job, t, now, h)
            if await self._write(stored, job, now, items, t.waits) is not None:
                return job
        return None

    # jobs -----------------------------------------------------------------------

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        await self.open()
        return [await self._enqueue_one(new) for new in jobs]

    async def _enqueue_one(self, new: NewJob) -> Job:
        if not await self._store.claim_id(new.id, new.queue):
            existing = await self._store.read(new.id)
            if existing is not None:
                return _duplicate(existing.job)
        if new.unique_key is not None:
            holder = await self._store.claim_unique(new.tenant, new.unique_key, new.id)
            found = await self._store.read(holder) if holder else None
            if found is not None:
                return _duplicate(found.job)
        now = _now()
        run_at = new.run_at or now + timedelta(seconds=new.delay)
        later = run_at > now
        blank = Job(
            id=new.id, task=new.task, queue=new.queue, tenant=new.tenant,
            state=State.SCHEDULED, payload=new.payload, priority=new.priority, attempts=0,
            max_attempts=new.max_attempts, created_at=now, run_at=run_at, timeout=new.timeout,
            unique_key=new.unique_key, batch_id=new.batch_id, meta=dict(new.meta),
        )  # fmt: skip
        t = lc.ENQUEUE_LATER if later else lc.ENQUEUE
        job, items = apply(blank, t, now, NOTHING)
        if await self._write(None, job, now, items, True) is None:
            existing = await self._store.read(new.id)
            assert existing is not None, f"job {new.id} neither written nor found"
            return _duplicate(existing.job)
        return job

    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        await self.open()
        pauses = await self.control_pauses()
        if any(p.tenant is None and p.queue is None for p in pauses):
            return []
        leased: list[Job] = []
        h = Handed({}, worker_id=worker_id, seconds=lease_for)
        # Each job's lease runs from its own grant, but the worker starts it and
        # its heartbeat learns of it only when this call returns: on a slow or
        # contended store the round trips of the later grants would eat the
        # earlier leases (they lapsed and the jobs ran twice, one after the
        # other). So stop granting once a quarter of a lease has gone by since
        # the first grant.
        deadline = float("inf")
        for queue in queues:
            async for row in self._ready_rows(queue):
                if len(leased) >= limit or time.monotonic() > deadline:
                    break
                if any(p.covers(row["Tenant"], queue) for p in pauses):
                    continue
                job = await self._start(row, h)
                if job is not None:
                    leased.append(job)
                    deadline = min(deadline, time.monotonic() + lease_for / 4)
            if len(leased) >= limit or time.monotonic() > deadline:
                break
        return await self._renewed(leased, lease_for)

    async def _renewed(self, jobs: list[Job], lease_for: float) -> list[Job]:
        """The leased jobs with at least three quarters of a lease left: one
        granted too long ago (a single slow grant can outlast the deadline) is
        extended now, and one whose lease lapsed meanwhile is not handed out."""
        fresh_until = _now() + timedelta(seconds=lease_for * 3 / 4)
        out = []
        for job in jobs:
            if job.lease_expires_at is not None and job.lease_expires_at >= fresh_until:
                out.append(job)
            elif (extended := await self._extend(job.lease, lease_for)) is not None:
                out.append(extended)
        return out

    async def _start(self, row: dict[str, Any], h: Handed) -> Job | None:
        stored = await self._store.read(row["JobId"])
        if stored is None or stored.ready != row["RowKey"]:
            return None
        now = _now()
        if not lc.START.allows(stored.job.state) or stored.job.run_at > now:
            return None
        job, items = apply(stored.job, lc.START, now, h)
        return job if await self._write(stored, job, now, items, False) else None

    async def _ready_rows(self, queue: str) -> AsyncIterator[dict[str, Any]]:
        self._c.ops["table"] += 1
        rows = self._c.table("jobs").query_entities(
            "PartitionKey eq @pk and RowKey ge 'r_' and RowKey lt 'r`' and RunAt le @now",
            parameters={"pk": codec.partition(queue), "now": codec.ts(_now())},
            results_per_page=100,
        )
        async for row in rows:
            yield row

    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        lost: set[str] = set()
        cancel: set[str] = set()
        # Extended side by side: one by one, a round over many leases on a slow
        # store took longer than the leases it was keeping alive.
        extended = await asyncio.gather(*(self._extend(lease, lease_for) for lease in leases))
        for lease, job in zip(leases, extended, strict=True):
            if job is None:
                lost.add(lease.job_id)
            elif job.cancel_requested:
                cancel.add(job.id)
        return HeartbeatReply(frozenset(lost), frozenset(cancel))

    async def _extend(self, lease: Lease, lease_for: float) -> Job | None:
        for _ in range(_CAS_TRIES):
            stored = await self._store.read(lease.job_id)
            if stored is None or not _holds(stored.job, lease):
                return None
            job = _copy(stored.job)
            job.lease_expires_at = _now() + timedelta(seconds=lease_for)
            if await self._store.commit(stored, job, [], False) is not None:
                return job
        return None

    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        out = []
        for lease, result in items:
            done = await self._transit(lease.job_id, lc.SUCCEED, Handed({}, result=result),
                                       token=lease.token)  # fmt: skip
            out.append(done is not None)
        return out

    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        t = lc.FAIL if retry_in is None else lc.RETRY
        h = Handed(ed.failure(error), error=error, seconds=retry_in)
        return await self._transit(lease.job_id, t, h, token=lease.token)

    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        h = Handed(ed.failure(error), error=error)
        return await self._transit(lease.job_id, lc.REJECT, h, token=lease.token)

    async def job_requeue(self, lease: Lease, checkpoint: bytes | None) -> Job | None:
        h = Handed({}, checkpoint=checkpoint)
        return await self._transit(lease.job_id, lc.REQUEUE, h, token=lease.token)

    async def job_snooze(self, lease: Lease, delay: float, reason: str) -> Job | None:
        h = Handed(ed.snoozed(delay, reason), seconds=delay)
        return await self._transit(lease.job_id, lc.SNOOZE, h, token=lease.token)

    async def job_cancel(self, job_id: str, tenant: str | None = None) -> Cancellation | None:
        for _ in range(_CAS_TRIES):
            stored = await self._store.read(job_id)
            if stored is None or (tenant is not None and stored.job.tenant != tenant):
                return None
            job = stored.job
            if lc.CANCEL_WAITING.allows(job.state):
                was = job.state
                done = await self._transit(
                    job_id, lc.CANCEL_WAITING, check=lambda j, was=was: j.state == was
                )
                if done is not None:
                    return Cancellation(done, CancelOutcome.CANCELLED)
                continue
            if job.state is not State.RUNNING:
                return Cancellation(job, CancelOutcome.ENDED)
            if job.cancel_requested:
                return Cancellation(job, CancelOutcome.REQUESTED)
            asked = _copy(job)
            asked.cancel_requested = True
            now = _now()
            if await self._write(stored, asked, now, [(EventKind.CANCEL_REQUESTED, {})], False):
                return Cancellation(asked, CancelOutcome.REQUESTED)
        return None

    async def job_cancels(self, job_ids: Sequence[str]) -> frozenset[str]:
        found = [await self._store.read(i) for i in job_ids]
        return frozenset(s.job.id for s in found if s is not None and s.job.cancel_requested)

    async def job_cancel_confirm(self, lease: Lease) -> Job | None:
        return await self._transit(lease.job_id, lc.CANCEL_RUNNING, token=lease.token)

    async def job_save_progress(
        self, lease: Lease, checkpoint: bytes | None, progress: float | None, message: str | None
    ) -> bool:
        for _ in range(_CAS_TRIES):
            stored = await self._store.read(lease.job_id)
            if stored is None or not _holds(stored.job, lease):
                return False
            job = _copy(stored.job)
            items: list[tuple[EventKind, dict[str, Any]]] = []
            if checkpoint is not None:
                job.checkpoint_data = checkpoint
            if progress is not None:
                job.progress, job.progress_message = progress, message
                items.append((EventKind.PROGRESS, ed.progress(progress, message)))
            if await self._write(stored, job, _now(), items, False) is not None:
                return True
        return False

    async def job_redrive(self, job_id: str, tenant: str | None = None) -> Job | None:
        stored = await self._store.read(job_id)
        if stored is None or (tenant is not None and stored.job.tenant != tenant):
            return None
        if not lc.REDRIVE.allows(stored.job.state):
            return None
        job = stored.job
        if job.unique_key is not None:
            holder = await self._store.claim_unique(job.tenant, job.unique_key, job.id)
            if holder is not None:
                return None
        return await self._transit(job_id, lc.REDRIVE)

    async def job_recover_expired(self) -> list[Job]:
        await self.open()
        now = _now()
        out: list[Job] = []
        rows = self._scan("Kind eq 'job' and State eq 'running' and LeaseExpiresAt le @now",
                          {"now": codec.ts(now)}, select=["Id"])  # fmt: skip
        for job_id in [r["Id"] async for r in rows]:
            job = await self._expire(job_id)
            if job is not None:
                out.append(job)
        return out

    async def _expire(self, job_id: str) -> Job | None:
        def expired(job: Job) -> bool:
            return job.lease_expires_at is not None and job.lease_expires_at <= _now()

        stored = await self._store.read(job_id)
        if stored is None:
            return None
        if stored.job.cancel_requested:
            return await self._transit(job_id, lc.EXPIRE_CANCELLED, check=expired)
        if stored.job.attempts >= stored.job.max_attempts:
            h = Handed({}, error=ed.LEASE_EXPIRED)
            return await self._transit(job_id, lc.EXPIRE_DEAD, h, check=expired)
        return await self._transit(job_id, lc.EXPIRE, check=expired)

    async def job_get(self, job_id: str, tenant: str | None = None) -> Job | None:
        stored = await self._store.read(job_id)
        if stored is None or (tenant is not None and stored.job.tenant != tenant):
            return None
        return stored.job

    async def job_list(self, query: JobQuery) -> list[Job]:
        await self.open()
        clauses, params = _job_filter(query)
        jobs = [codec.to_job(e) async for e in self._scan(" and ".join(clauses), params)]
        jobs.sort(key=lambda j: j.id, reverse=True)
        return jobs[: query.limit]

    async def job_counts(self, tenant: str | None = None) -> QueueCounts:
        await self.open()
        clauses, params = _job_filter(JobQuery(tenant=tenant))
        counts: QueueCounts = {}
        async for e in self._scan(" and ".join(clauses), params, select=["Queue", "State"]):
            key = (e["Queue"], State(e["State"]))
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _scan(self, where: str, params: dict[str, Any],
              select: list[str] | None = None) -> AsyncIterator[Any]:  # fmt: skip
        """A query over every partition of the jobs table: listings, counts and
        the recovery sweep are full scans on Tables (see docs/backends/azure.md)."""
        self._c.ops["table"] += 1
        return self._c.table("jobs").query_entities(where, parameters=params, select=select,
                                                    results_per_page=1000)  # fmt: skip

    async def job_purge(self, finished_before: datetime, states: Sequence[State]) -> int:
        await self.open()
        wanted = sorted(set(states) & lc.ENDED)
        if not wanted:
            return 0
        where = "Kind eq 'job' and FinishedAt lt @before and (" + " or ".join(
            f"State eq '{s.value}'" for s in wanted) + ")"  # fmt: skip
        doomed = [
            codec.to_job(e) async for e in self._scan(where, {"before": codec.ts(finished_before)})
        ]
        for job in doomed:
            await self._delete_job(job)
        return len(doomed)

    async def _delete_job(self, job: Job) -> None:
        table = self._c.table("jobs")
        pk = codec.partition(job.queue)
        self._c.ops["table"] += 1
        events = table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": pk, "lo": f"e_{job.id}_", "hi": f"e_{job.id}`"},
            select=["RowKey"],
        )
        keys = [codec.job_key(job.id)] + [e["RowKey"] async for e in events]
        for i in range(0, len(keys), 100):
            self._c.ops["table"] += 1
            await table.submit_transaction(
                [("delete", {"PartitionKey": pk, "RowKey": k}) for k in keys[i : i + 100]]
            )
        if job.unique_key is not None:
            await self._store.release_unique(job.tenant, job.unique_key, job.id)
        await self._store.forget_id(job.id)

    # events ---------------------------------------------------------------------

    async def event_list(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        queue = await self._store.queue_of(job_id)
        if queue is None:
            return []
        self._c.ops["table"] += 1
        rows = self._c.table("jobs").query_entities(
            "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
            parameters={
                "pk": codec.partition(queue),
                "lo": codec.event_key(job_id, after),
                "hi": f"e_{job_id}`",
            },
        )
        out: list[Event] = []
        async for row in rows:
            out.append(codec.to_event(row))
            if len(out) >= limit:
                break
        return out

    async def event_latest(self, job_id: str) -> Event | None:
        events = await self.event_list(job_id, 0, 1_000_000)
        return events[-1] if events else None

    async def event_feed(
        self, after: int = 0, tenant: str | None = None, limit: int = 1000
    ) -> list[Event]:
        await self.open()
        where = f"Kind eq 'event' and Seq gt {int(after)}L"
        params: dict[str, Any] = {}
        if tenant is not None:
            where += " and Tenant eq @tenant"
            params["tenant"] = tenant
        events = [codec.to_event(e) async for e in self._scan(where, params)]
        events.sort(key=lambda e: e.id)
        return events[:limit]

    # delivery -------------------------------------------------------------------

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        await self._bell.wait(queues, timeout)

    def _bell_wake(self) -> None:
        self._bell.wake_local()

    async def signal(self, job: Job) -> None:
        """Send the job's Storage Queue message again: for a trigger that
        received it before the job came due (delays past the 7-day maximum)."""
        await self._bell.ring(job, _now())


def _job_filter(q: JobQuery) -> tuple[list[str], dict[str, Any]]:
    clauses = ["Kind eq 'job'"]
    params: dict[str, Any] = {}
    for name, field, value in (
        ("tenant", "Tenant", q.tenant), ("task", "Task", q.task),
        ("batch", "BatchId", q.batch_id),
    ):  # fmt: skip
        if value is not None:
            clauses.append(f"{field} eq @{name}")
            params[name] = value
    if q.queue is not None:
        clauses.append("PartitionKey eq @pk")
        params["pk"] = codec.partition(q.queue)
    if q.before_id is not None:
        clauses.append("Id lt @before")
        params["before"] = q.before_id
    if q.states is not None:
        names = sorted(State(s).value for s in q.states) or ["none"]
        clauses.append("(" + " or ".join(f"State eq '{n}'" for n in names) + ")")
    return clauses, params


def _holds(job: Job, lease: Lease) -> bool:
    return job.state is State.RUNNING and job.lease_token == lease.token


def _copy(job: Job) -> Job:
    import copy

    out = copy.copy(job)
    out.meta = copy.deepcopy(job.meta)
    return out


def _duplicate(job: Job) -> Job:
    job.duplicate = True
    return job


def _now() -> datetime:
    return datetime.now(UTC)
