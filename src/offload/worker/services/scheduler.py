"""Fires due schedules and settles batches whose jobs have all ended.

Every worker runs it; none is elected. A firing is enqueued under an id derived
from (tenant, schedule, firing time), so two workers firing at once store one
job, and the compare-and-set ``schedule_advance`` moves the schedule on once.
A worker that dies between the two steps leaves the firing due: the next one
re-enqueues the same id (a no-op) and advances it. Missed firings (every worker
down) collapse into one firing on return, then the rule resumes from now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from offload.backends.base import Backend
from offload.batch import settle
from offload.ids import derived_id
from offload.job import NewJob, Schedule
from offload.schedule import CronRule
from offload.worker.services import pause

if TYPE_CHECKING:
    from offload.app import App

log = logging.getLogger("offload.worker")


class Scheduler:
    def __init__(
        self,
        app: App,
        backend: Backend,
        every: float,
        sweep_every: float,
        stop: asyncio.Event,
    ) -> None:
        self.app = app
        self.backend = backend
        self.every = every
        self.sweep_every = sweep_every
        self.stop = stop
        self.touched: set[str] = set()
        self._touch = asyncio.Event()
        self.fired = 0

    def touch(self, batch_id: str) -> None:
        """A job of this batch has ended here: settle the batch soon."""
        self.touched.add(batch_id)
        self._touch.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            await self._guard(self.fire_due(), "schedules")
            if self.touched:
                await self._guard(self.settle_touched(), "batches")
            if loop.time() >= next_sweep:
                await self._guard(self.sweep(), "batch sweep")
                next_sweep = loop.time() + self.sweep_every
            if await pause(self.stop, self.every):
                return

    async def _guard(self, step: Awaitable[Any], what: str) -> None:
        try:
            await step
        except Exception as exc:
            log.warning("%s: %s", what, exc)

    # schedules ----------------------------------------------------------------------

    async def fire_due(self, now: datetime | None = None) -> int:
        """Fire every due schedule; ``now`` defaults to the backend's clock (tests
        pass their own to walk across a daylight-saving change)."""
        now = now or await self.backend.now()
        fired = 0
        for schedule in await self.backend.schedule_due(now):
            if await self.fire(schedule, now):
                fired += 1
        return fired

    async def fire(self, s: Schedule, now: datetime) -> bool:
        if s.next_run_at is None:
            return False
        due = s.next_run_at
        try:
            following = CronRule(s.cron, s.timezone).next_after(max(due, now))
        except ValueError as exc:
            log.error("schedule %s/%s: %s; it fires no more", s.tenant, s.id, exc)
            return await self.backend.schedule_advance(s.id, s.tenant, due, None, None)
        if s.unique and await self._previous_running(s):
            log.info("schedule %s/%s: previous job not ended; skipping %s",
                     s.tenant, s.id, due.isoformat())  # fmt: skip
            return await self.backend.schedule_advance(s.id, s.tenant, due, following, None)
        job = NewJob(
            id=derived_id(due, "schedule", s.tenant, s.id, due.isoformat()), task=s.task,
            payload=s.payload, queue=s.queue, tenant=s.tenant, priority=s.priority,
            max_attempts=s.max_attempts, timeout=s.timeout,
            meta={"schedule": s.id, "firing": due.isoformat()},
        )  # fmt: skip
        [stored] = await self.app.enqueue_new_async([job])
        won = await self.backend.schedule_advance(s.id, s.tenant, due, following, stored.id)
        if won:
            self.fired += 1
        return won

    async def _previous_running(self, s: Schedule) -> bool:
        if s.last_job_id is None:
            return False
        previous = await self.backend.job_get(s.last_job_id, s.tenant)
        return previous is not None and not previous.ended

    # batches ------------------------------------------------------------------------

    async def settle_touched(self) -> None:
        batch_ids, self.touched = self.touched, set()
        self._touch.clear()
        for batch_id in batch_ids:
            await settle(self.app, self.backend, batch_id)

    async def sweep(self) -> None:
        """Settle batches a worker that died (or an API cancel) left ended."""
        for batch in await self.backend.batch_list(unfinished=True, limit=200):
            if batch.ended:
                await settle(self.app, self.backend, batch.id)
