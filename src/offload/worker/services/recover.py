"""Redelivers jobs whose worker stopped heartbeating (crashed, killed, cut off).

Every worker runs it; the backend's EXPIRE transition is atomic, so two workers
recovering at once cannot redeliver a job twice.
"""

from __future__ import annotations

import logging

from offload.backends.base import Backend

log = logging.getLogger("offload.worker")


class Recover:
    name = "recover"

    def __init__(self, backend: Backend, every: float) -> None:
        self.backend = backend
        self.interval = every

    async def once(self) -> None:
        for job in await self.backend.job_recover_expired():
            log.warning("job %s (%s): lease expired, now %s", job.id, job.task, job.state)
