"""Enqueueing: many jobs in a few transactions.

Jobs are taken in order, in runs: a run of plain jobs (no unique key, no id
seen earlier in the call) claims its ids 100 per transaction, numbers its
events from one block, writes its jobs 33 per transaction of their queue's
partition (entity, ready row, event) and sends their messages a few at a
time. A job with a unique key, or an id repeated in the call, goes alone
after the run before it is written, so it sees that run's jobs as the
contract's one-job-at-a-time order would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from offload import lifecycle as lc
from offload.backends.azure import codec
from offload.backends.azure.apply import NOTHING, apply
from offload.backends.azure.delivery import Doorbell
from offload.backends.azure.eventids import EventIds
from offload.backends.azure.store import JobStore, Write
from offload.errors import BackendError
from offload.job import Job, NewJob
from offload.lifecycle import State

_TRIES = 5


class Enqueuer:
    def __init__(self, store: JobStore, ids: EventIds, bell: Doorbell) -> None:
        self.store = store
        self.ids = ids
        self.bell = bell

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        for new in jobs:  # all refused, or all stored
            codec.check_fits(_blank(new)[0])
        out: list[Job] = []
        for run, alone in _runs(jobs):
            out += await (self._one(run[0]) if alone else self._many(run))
        return out

    async def _many(self, news: list[NewJob]) -> list[Job]:
        # Ids for the ENQUEUE events (one each) are reserved while the job ids
        # are claimed: one round trip less; a duplicate leaves a gap.
        claimed, first = await asyncio.gather(
            self.store.claim_ids([(n.id, n.queue) for n in news]), self.ids.reserve(len(news))
        )
        found: dict[str, Job] = {}
        for new, won in zip(news, claimed, strict=True):
            if not won and (existing := await self.store.read(new.id)) is not None:
                found[new.id] = _duplicate(existing.job)
        fresh = [n for n in news if n.id not in found]
        written = await self._write([_blank(n) for n in fresh], (first, len(news)))
        for new, job in zip(fresh, written, strict=True):
            found[new.id] = job if job is not None else await self._existing(new)
        return [found[n.id] for n in news]

    async def _one(self, new: NewJob) -> list[Job]:
        if not await self.store.claim_id(new.id, new.queue):
            existing = await self.store.read(new.id)
            if existing is not None:
                return [_duplicate(existing.job)]
        if new.unique_key is not None:
            holder = await self.store.claim_unique(new.tenant, new.unique_key, new.id)
            found = await self.store.read(holder) if holder else None
            if found is not None:
                return [_duplicate(found.job)]
        [job] = await self._write([_blank(new)])
        return [job if job is not None else await self._existing(new)]

    async def _write(
        self, blanks: list[tuple[Job, datetime]], block: tuple[int, int] | None = None
    ) -> list[Job | None]:
        """ENQUEUE (or ENQUEUE_LATER) each job, its event ids from ``block`` when
        given (first id, size); ``None`` where the job existed."""
        if not blanks:
            return []
        applied = [apply(job, lc.ENQUEUE_LATER if job.run_at > now else lc.ENQUEUE, now, NOTHING)
                   for job, now in blanks]  # fmt: skip
        events = await self.ids.number([(job, now, items) for (job, items), (_, now)
                                        in zip(applied, blanks, strict=True)], block)  # fmt: skip
        writes = [Write(None, job, evs, True) for (job, _), evs in zip(applied, events,
                                                                       strict=True)]  # fmt: skip
        done = await self.store.commit_many(writes)
        jobs = [w.job if d is not None else None for w, d in zip(writes, done, strict=True)]
        await self.bell.ring_many([j for j in jobs if j is not None], _now())
        return jobs

    async def _existing(self, new: NewJob) -> Job:
        """The job that refused ``new``'s write; written alone again in the rare
        case a transaction blamed it for another's refusal."""
        for _ in range(_TRIES):
            existing = await self.store.read(new.id)
            if existing is not None:
                return _duplicate(existing.job)
            [job] = await self._write([_blank(new)])
            if job is not None:
                return job
        raise BackendError(f"job {new.id}: Table storage refused its write {_TRIES} times")


def _runs(jobs: Sequence[NewJob]) -> list[tuple[list[NewJob], bool]]:
    """Split the call into runs of plain jobs and single jobs to write alone."""
    runs: list[tuple[list[NewJob], bool]] = []
    run: list[NewJob] = []
    seen: set[str] = set()
    for new in jobs:
        if new.unique_key is None and new.id not in seen:
            run.append(new)
        else:
            if run:
                runs.append((run, False))
            run = []
            runs.append(([new], True))
        seen.add(new.id)
    if run:
        runs.append((run, False))
    return runs


def _blank(new: NewJob) -> tuple[Job, datetime]:
    """The job before ENQUEUE, and the time it is enqueued at."""
    now = _now()
    run_at = new.run_at or now + timedelta(seconds=new.delay)
    job = Job(
        id=new.id, task=new.task, queue=new.queue, tenant=new.tenant,
        state=State.SCHEDULED, payload=new.payload, priority=new.priority, attempts=0,
        max_attempts=new.max_attempts, created_at=now, run_at=run_at, timeout=new.timeout,
        unique_key=new.unique_key, batch_id=new.batch_id, meta=dict(new.meta),
    )  # fmt: skip
    return job, now


def _duplicate(job: Job) -> Job:
    job.duplicate = True
    return job


def _now() -> datetime:
    return datetime.now(UTC)
