"""Redelivers jobs whose worker stopped heartbeating (crashed, killed, cut off).

Every worker runs it; the backend's EXPIRE transition is atomic, so two workers
recovering at once cannot redeliver a job twice.
"""

from __future__ import annotations

import asyncio
import logging

from offload.backends.base import Backend
from offload.worker.services import pause

log = logging.getLogger("offload.worker")


class Recover:
    def __init__(self, backend: Backend, every: float, stop: asyncio.Event) -> None:
        self.backend = backend
        self.every = every
        self.stop = stop

    async def run(self) -> None:
        while True:
            await self.once()
            if await pause(self.stop, self.every):
                return

    async def once(self) -> int:
        try:
            jobs = await self.backend.job_recover_expired()
        except Exception as exc:
            log.warning("lease recovery failed: %s", exc)
            return 0
        for job in jobs:
            log.warning("job %s (%s): lease expired, now %s", job.id, job.task, job.state)
        return len(jobs)
