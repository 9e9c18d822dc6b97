"""``AzureBackend``: the contract over Tables (state) and Storage Queues
(delivery signals). The package docstring says how and why."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends.azure import codec, stats
from offload.backends.azure._url import parse
from offload.backends.azure.apply import NOTHING, Handed, apply
from offload.backends.azure.clients import Clients
from offload.backends.azure.delivery import Doorbell
from offload.backends.azure.enqueue import Enqueuer
from offload.backends.azure.eventids import EventIds, Items
from offload.backends.azure.lease import Leaser
from offload.backends.azure.records import Records
from offload.backends.azure.store import JobStore, Stored, Write
from offload.backends.base import QueueCounts, check_release
from offload.job import (
    DISCARD_META,
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

_CAS_TRIES = 20


class AzureBackend(Records):
    def __init__(self, url: str = "azure://") -> None:
        self.url = url
        self._target = parse(url)
        self._wire()

    def _wire(self) -> None:
        self._c = Clients(self._target)
        self._store = JobStore(self._c)
        self._bell = Doorbell(self._c)
        self._ids = EventIds(self._c)
        self._leaser = Leaser(self._c, self._store, self._ids)
        self._enqueuer = Enqueuer(self._store, self._ids, self._bell)
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
        self._wire()

    def describe(self) -> dict[str, Any]:
        return {"backend": type(self).__name__, "url": self._target.safe_url,
                "prefix": self._target.prefix}  # fmt: skip

    async def now(self) -> datetime:
        return _now()

    # writing a transition -------------------------------------------------------

    async def _events(self, job: Job, now: datetime, items: Items) -> list[Event]:
        [events] = await self._ids.number([(job, now, items)])
        return events

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
        compare-and-set: a lost race re-reads and decides again. A job this
        instance holds is tried first as it last wrote it, with no read."""
        for n in range(_CAS_TRIES):
            held = self._store.held(job_id) if n == 0 else None
            stored = held or await self._store.read(job_id)
            if stored is None or not _may(stored.job, t, token, check):
                if held is not None:
                    continue  # decide on the job as stored, not as remembered
                return None
            now = _now()
            job, items = apply(stored.job, t, now, h)
            if await self._write(stored, job, now, items, t.waits) is not None:
                return job
        return None

    # jobs -----------------------------------------------------------------------

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        await self.open()
        return await self._enqueuer.enqueue(jobs)

    async def job_lease(
        self, worker_id: str, queues: Sequence[str], limit: int, lease_for: float
    ) -> list[Job]:
        await self.open()
        pauses = await self.control_pauses()
        if any(p.tenant is None and p.queue is None for p in pauses):
            return []
        h = Handed({}, worker_id=worker_id, seconds=lease_for)
        return await self._leaser.lease(queues, limit, h, pauses)

    async def job_lease_one(
        self, worker_id: str, job_id: str, lease_for: float, queue: str | None = None
    ) -> Job | None:
        """START the job ``job_id`` if it is waiting, due and not paused: what the
        Azure Functions trigger does with the job its message names (not part
        of the contract; ``queue``, when known, saves looking it up)."""
        await self.open()
        pauses = await self.control_pauses()
        if queue is not None:
            await self._store.read(job_id, queue)  # learns where the job lives

        def due(job: Job) -> bool:
            return job.run_at <= _now() and not any(p.covers(job.tenant, job.queue)
                                                    for p in pauses)  # fmt: skip

        h = Handed({}, worker_id=worker_id, seconds=lease_for)
        return await self._transit(job_id, lc.START, h, check=due)

    async def job_heartbeat(self, leases: Sequence[Lease], lease_for: float) -> HeartbeatReply:
        until = _now() + timedelta(seconds=lease_for)
        held = [self._store.held(lease.job_id) for lease in leases]
        quick = [h for h, lease in zip(held, leases, strict=True) if h and _holds(h.job, lease)]
        writes = [Write(h, _extended(h.job, until), [], False) for h in quick]
        done = await self._store.commit_many(writes)
        extended = {(w.job.id, w.job.lease_token): w.job
                    for w, d in zip(writes, done, strict=True) if d is not None}  # fmt: skip
        lost: set[str] = set()
        cancel: set[str] = set()
        for lease in leases:
            job = extended.get((lease.job_id, lease.token)) or await self._extend(lease, lease_for)
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
            job = _extended(stored.job, _now() + timedelta(seconds=lease_for))
            if await self._store.commit(stored, job, [], False) is not None:
                return job
        return None

    async def job_complete_many(self, items: Sequence[tuple[Lease, bytes | None]]) -> list[bool]:
        """SUCCEED the jobs this instance holds in a few transactions (no read,
        one block of event ids); any other, or any whose write lost a race,
        one by one as a compare-and-set."""
        now = _now()
        quick: dict[int, tuple[Stored, Job, Items]] = {}
        for n, (lease, result) in enumerate(items):
            held = self._store.held(lease.job_id)
            if held is not None and _holds(held.job, lease) and not _twice(items, n):
                quick[n] = (held, *apply(held.job, lc.SUCCEED, now, Handed({}, result=result)))
        events = await self._ids.number([(job, now, ev) for _, job, ev in quick.values()])
        writes = [Write(held, job, evs, False)
                  for (held, job, _), evs in zip(quick.values(), events, strict=True)]  # fmt: skip
        written = await self._store.commit_many(writes)
        done = {n for n, d in zip(quick, written, strict=True) if d is not None}
        out = []
        for n, (lease, result) in enumerate(items):
            h = Handed({}, result=result)
            out.append(n in done or await self._transit(lease.job_id, lc.SUCCEED, h,
                                                        token=lease.token) is not None)  # fmt: skip
        return out

    async def job_fail(self, lease: Lease, error: ErrorInfo, retry_in: float | None) -> Job | None:
        t = lc.FAIL if retry_in is None else lc.RETRY
        h = Handed(ed.failure(error), error=error, seconds=retry_in)
        return await self._transit(lease.job_id, t, h, token=lease.token)

    async def job_reject(self, lease: Lease, error: ErrorInfo) -> Job | None:
        h = Handed(ed.failure(error), error=error)
        return await self._transit(lease.job_id, lc.REJECT, h, token=lease.token)

    async def job_discard(self, lease: Lease, error: ErrorInfo, *, ran: bool) -> Job | None:
        h = Handed(ed.failure(error), error=error)
        t = lc.DISCARD if ran else lc.DISCARD_REJECTED
        return await self._transit(lease.job_id, t, h, token=lease.token)

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
        """One range query per queue over its cancel markers, not a read per
        job: workers ask several times a second."""
        queues = {q for q in [await self._store.queue_of(i) for i in job_ids] if q is not None}
        asked: set[str] = set()
        for queue in queues:
            self._c.ops["table"] += 1
            rows = self._c.table("jobs").query_entities(
                "PartitionKey eq @pk and RowKey ge 'c_' and RowKey lt 'c`'",
                parameters={"pk": codec.partition(queue)}, select=["JobId"],
            )  # fmt: skip
            asked |= {r["JobId"] async for r in rows}
        return frozenset(asked & set(job_ids))

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

    async def job_release(
        self, job_id: str, transition: Transition, data: dict[str, Any]
    ) -> Job | None:
        check_release(transition)
        return await self._transit(job_id, transition, Handed(data))

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

    async def job_expire_one(self, job_id: str) -> Job | None:
        """EXPIRE (or EXPIRE_DEAD) the job if it runs under a lease that has run
        out: what the Functions trigger does with a message that came back
        because the host running its job died (not part of the contract)."""
        return await self._expire(job_id)

    async def _expire(self, job_id: str) -> Job | None:
        def expired(job: Job) -> bool:
            return job.lease_expires_at is not None and job.lease_expires_at <= _now()

        stored = await self._store.read(job_id)
        if stored is None or stored.job.state is not State.RUNNING:
            return None
        if stored.job.cancel_requested:
            return await self._transit(job_id, lc.EXPIRE_CANCELLED, check=expired)
        if stored.job.attempts >= stored.job.max_attempts:
            h = Handed({}, error=ed.LEASE_EXPIRED)
            last = lc.EXPIRE_DISCARD if stored.job.meta.get(DISCARD_META) else lc.EXPIRE_DEAD
            return await self._transit(job_id, last, h, check=expired)
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

    async def job_stats(self, tenant: str | None, queue: str | None) -> list[DayCount]:
        await self.open()
        self._c.ops["table"] += 2
        return await stats.read(self._c.table("jobs"), tenant, queue)

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
        await self._purge_control_events(finished_before)
        return len(doomed)

    async def _control_event(self, tenant: str, kind: EventKind, data: dict[str, Any]) -> None:
        now = _now()
        event = Event(await self._ids.reserve(1), None, tenant, kind, now, data)
        self._c.ops["table"] += 1
        await self._c.table("jobs").create_entity(codec.control_event_entity(event))

    async def _purge_control_events(self, before: datetime) -> None:
        self._c.ops["table"] += 1
        rows = self._c.table("jobs").query_entities(
            "PartitionKey eq @pk and At lt @before",
            parameters={"pk": codec.CONTROL_PARTITION, "before": codec.ts(before)},
            select=["RowKey"],
        )
        for row in [r async for r in rows]:
            self._c.ops["table"] += 1
            with contextlib.suppress(ResourceNotFoundError):
                await self._c.table("jobs").delete_entity(codec.CONTROL_PARTITION, row["RowKey"])

    async def _delete_job(self, job: Job) -> None:
        table = self._c.table("jobs")
        pk = codec.partition(job.queue)
        self._c.ops["table"] += 1
        events = table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": pk, "lo": f"e_{job.id}_", "hi": f"e_{job.id}`"},
            select=["RowKey"],
        )
        # Events first, then the job with its count (azure/stats.py): a pass cut
        # short leaves the job to the next pass, never a job counted twice.
        keys = [e["RowKey"] async for e in events]
        for i in range(0, len(keys), 100):
            self._c.ops["table"] += 1
            await table.submit_transaction(
                [("delete", {"PartitionKey": pk, "RowKey": k}) for k in keys[i : i + 100]]
            )
        self._c.ops["table"] += 1
        await stats.delete_counted(table, job)
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
            where += " and (Tenant eq @tenant or Tenant eq '')"  # '': job.EVERY_TENANT
            params["tenant"] = tenant
        events = [codec.to_event(e) async for e in self._scan(where, params)]
        events.sort(key=lambda e: e.id)
        return events[:limit]

    async def event_last_id(self, tenant: str | None = None) -> int:
        """One point read of the id counter, instead of the contract's probes,
        each of which would be a filtered scan of the table here."""
        await self.open()
        return await self._ids.latest()

    # delivery -------------------------------------------------------------------

    async def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> None:
        await self._bell.wait(queues, timeout)

    def _bell_wake(self) -> None:
        self._bell.wake_local()

    async def signal(self, job: Job, at_least: float = 0.0) -> None:
        """Send the job's Storage Queue message again, visible at its due time
        and not before ``at_least`` seconds from now: for a trigger that
        received it early (delays past the 7-day maximum) or while a pause
        held the job."""
        await self._bell.ring(job, _now(), at_least)


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


def _may(job: Job, t: Transition, token: str | None, check: Any) -> bool:
    """Whether ``t`` applies to ``job`` as read: a source state, the caller's
    lease for a leased transition, and the caller's own ``check``."""
    if not t.allows(job.state) or (t.leased and job.lease_token != token):
        return False
    return check is None or bool(check(job))


def _extended(job: Job, until: datetime) -> Job:
    out = _copy(job)
    out.lease_expires_at = until
    return out


def _twice(items: Sequence[tuple[Lease, bytes | None]], n: int) -> bool:
    """The same job earlier in ``items``: one transaction may not name it twice."""
    return any(lease.job_id == items[n][0].job_id for lease, _ in items[:n])


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
