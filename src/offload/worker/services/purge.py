"""Deletes succeeded and cancelled jobs (with their events) once they are older
than the retention period, so storage stays bounded. The dead letter is kept
until someone retries or purges it: those jobs still need a human.

A batch goes in the same pass once it finished before the cutoff and none of its
jobs is left: its record would only show empty counts, while a batch holding a
dead job stays with it, so the counts of what is still there stay true."""

from __future__ import annotations

import logging
from datetime import timedelta

from offload.backends.base import Backend
from offload.lifecycle import State

log = logging.getLogger("offload.worker")

PURGED_STATES = (State.SUCCEEDED, State.CANCELLED)


class Purge:
    name = "purge"

    def __init__(self, backend: Backend, retention: float, every: float) -> None:
        self.backend = backend
        self.retention = timedelta(seconds=retention)
        self.interval = every

    async def once(self) -> None:
        await self.purge()

    async def purge(self) -> int:
        """One pass; returns how many jobs went."""
        cutoff = await self.backend.now() - self.retention
        gone = await self.backend.job_purge(cutoff, PURGED_STATES)
        if gone:
            log.info("purged %d job(s) finished before %s", gone, cutoff.isoformat())
        batches = await self.backend.batch_purge(cutoff)
        if batches:
            log.info("purged %d batch(es) finished before %s", batches, cutoff.isoformat())
        return gone
