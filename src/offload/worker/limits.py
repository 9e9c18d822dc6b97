"""Admits a leased job past its task's limits, or snoozes it.

The backend holds the counts (slots and start times), so a limit holds across
every worker. A slot is held for a lease period and renewed with the heartbeat,
so a worker that dies gives its slots back when they run out. Released once the
run ended, however it ended (recorded, given up, stopped while still waiting).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from offload.backends.base import Backend
from offload.job import Job, Snoozed
from offload.task import Task

log = logging.getLogger("offload.worker")

# A refused job waits about this long before trying again (jittered, so the
# waiters of one limit do not come back in step).
RETRY_SLOT_AFTER = 0.5


class LimitGate:
    def __init__(self, backend: Backend, hold_for: float) -> None:
        self.backend = backend
        self.hold_for = hold_for
        self.held: dict[str, tuple[str, int]] = {}  # job id -> (key, limit)

    async def admit(self, job: Job, task: Task[Any]) -> Snoozed | None:
        limits = task.limits
        key = limits.key_for(task.name, _arguments(job))
        if limits.concurrency is not None:
            try:
                granted = await self.backend.limit_acquire(
                    key, job.id, limits.concurrency, self.hold_for
                )
            except BaseException:
                # Cut short (cancelled, or failed after the server acted): the
                # slot may be taken all the same, so it is held and released.
                self.held[job.id] = (key, limits.concurrency)
                raise
            if not granted:
                delay = RETRY_SLOT_AFTER * random.uniform(0.5, 1.5)
                return Snoozed(delay, f"concurrency limit {limits.concurrency} of {key!r}")
            self.held[job.id] = (key, limits.concurrency)
        if limits.rate is not None:
            wait = await self.backend.rate_acquire(key, limits.rate.limit, limits.rate.period)
            if wait > 0:
                await self.release(job.id)
                delay = wait + random.uniform(0, min(wait, 0.05))
                return Snoozed(delay, f"rate limit {limits.rate.limit} per "
                                      f"{limits.rate.period:g}s of {key!r}")  # fmt: skip
        return None

    async def release(self, job_id: str) -> None:
        held = self.held.pop(job_id, None)
        if held is None:
            return
        try:
            await self.backend.limit_release(held[0], job_id)
        except Exception as exc:  # the slot runs out by itself
            log.warning("could not release the slot of job %s: %s", job_id, exc)

    async def renew(self) -> None:
        for job_id, (key, limit) in list(self.held.items()):
            await self.backend.limit_acquire(key, job_id, limit, self.hold_for)


def _arguments(job: Job) -> dict[str, Any]:
    try:
        value = job.arguments
    except Exception:
        return {}
    return value if isinstance(value, dict) else {}
