"""Fires due schedules.

Every worker runs it; none is elected. A firing is enqueued under an id derived
from (tenant, schedule, firing time), so two workers firing at once store one
job, and the compare-and-set ``schedule_advance`` moves the schedule on once.
A worker that dies between the two steps leaves the firing due: the next one
re-enqueues the same id (a no-op) and advances it. Missed firings (every worker
down) collapse into one firing on return, then the rule resumes from now.

Each round also looks ``interval`` seconds ahead and sleeps until the first
firing it saw, so a firing known in advance is enqueued on time rather than up
to a round late, and an idle worker asks for schedules once per ``interval``
(two calls) instead of four times a second: on PostgreSQL that was most of an
idle worker's queries, and on Azure each is a billed table scan. A schedule
created by another process is seen within ``interval``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from offload.backends.base import Backend
from offload.ids import derived_id
from offload.job import NewJob, Schedule
from offload.schedule import CronRule

if TYPE_CHECKING:
    from offload.app import App

log = logging.getLogger("offload.worker")


class Scheduler:
    name = "scheduler"

    LOOK = 100  # schedules read ahead per round; more due at once: another round at once

    def __init__(self, app: App, backend: Backend, every: float) -> None:
        self.app = app
        self.backend = backend
        self.every = every
        self.interval = every  # until the next round: set by each round
        self.fired = 0

    async def once(self) -> None:
        now = await self.backend.now()
        ahead = await self.backend.schedule_due(now + timedelta(seconds=self.every), self.LOOK)
        later: list[datetime] = []
        for schedule in ahead:
            due = schedule.next_run_at
            if due is not None and due > now:
                later.append(due)
            else:
                await self.fire(schedule, now)
        if len(ahead) == self.LOOK and not later:
            self.interval = 0.0
        elif later:
            self.interval = min(self.every, (min(later) - now).total_seconds())
        else:
            self.interval = self.every

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
        job = await self.app.middleware.prepare_firing(s, job)
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
