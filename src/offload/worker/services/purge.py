"""Deletes succeeded and cancelled jobs (with their events) once they are older
than the retention period, so storage stays bounded. The dead letter is kept
until someone retries or purges it: those jobs still need a human."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from offload.backends.base import Backend
from offload.lifecycle import State
from offload.worker.services import pause

log = logging.getLogger("offload.worker")

PURGED_STATES = (State.SUCCEEDED, State.CANCELLED)


class Purge:
    def __init__(
        self, backend: Backend, retention: float, every: float, stop: asyncio.Event
    ) -> None:
        self.backend = backend
        self.retention = timedelta(seconds=retention)
        self.every = every
        self.stop = stop

    async def run(self) -> None:
        while not await pause(self.stop, self.every):
            await self.once()

    async def once(self) -> int:
        try:
            cutoff = await self.backend.now() - self.retention
            gone = await self.backend.job_purge(cutoff, PURGED_STATES)
        except Exception as exc:
            log.warning("purge failed: %s", exc)
            return 0
        if gone:
            log.info("purged %d job(s) finished before %s", gone, cutoff.isoformat())
        return gone
