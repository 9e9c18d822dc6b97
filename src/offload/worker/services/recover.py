"""Redelivers jobs whose worker stopped heartbeating (crashed, killed, cut off).

Every worker runs it; the backend's EXPIRE transition is atomic, so two workers
recovering at once cannot redeliver a job twice.
"""

from __future__ import annotations

import asyncio
import logging

from offload.backends.base import Backend

log = logging.getLogger("offload.worker")


class Recover:
    def __init__(self, backend: Backend, every: float) -> None:
        self.backend = backend
        self.every = every

    async def run(self) -> None:
        while True:
            await self.once()
            await asyncio.sleep(self.every)

    async def once(self) -> int:
        try:
            jobs = await self.backend.job_recover_expired()
        except Exception as exc:
            log.warning("lease recovery failed: %s", exc)
            return 0
        for job in jobs:
            log.warning("job %s (%s): lease expired, now %s", job.id, job.task, job.state)
        return len(jobs)
