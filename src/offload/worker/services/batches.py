"""Settles batches whose jobs have all ended: runs their continuations once.

A batch is settled soon after this worker writes the outcome of one of its jobs
(the recorder tells the worker, which touches the batch and wakes this service),
and now and then by a sweep over unfinished batches, which catches those a worker
that died, or a cancel through the API, left ended with nobody to settle them.
Every worker runs it; settling is idempotent, so two at once run nothing twice.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from offload.backends.base import Backend
from offload.batch import settle
from offload.lifecycle import State

if TYPE_CHECKING:
    from offload.app import App

# How many unfinished batches one sweep looks at.
SWEEP_LIMIT = 200


class BatchSettler:
    name = "batches"

    def __init__(self, app: App, backend: Backend, sweep_every: float) -> None:
        self.app = app
        self.backend = backend
        # Touched batches wake the service; the interval is the sweep's.
        self.interval = sweep_every
        self.woken = asyncio.Event()
        self.touched: set[str] = set()
        self._next_sweep = 0.0

    def touch(self, batch_id: str) -> None:
        """A job of this batch has ended here: settle the batch soon."""
        self.touched.add(batch_id)
        self.woken.set()

    async def once(self) -> None:
        await self.settle_touched()
        now = asyncio.get_running_loop().time()
        if now >= self._next_sweep:
            await self.sweep()
            self._next_sweep = now + self.interval

    async def settle_touched(self) -> None:
        batch_ids, self.touched = self.touched, set()
        try:
            for batch_id in batch_ids:
                await settle(self.app, self.backend, batch_id)
        except Exception:
            # Keep what is not settled yet for the retry round.
            self.touched |= batch_ids
            raise

    async def sweep(self) -> None:
        """Settle batches a worker that died (or an API cancel) left ended, and
        move on dependents whose parents ended with nobody left to tell them."""
        for batch in await self.backend.batch_list(unfinished=True, limit=SWEEP_LIMIT):
            if batch.ended or batch.counts.get(State.SCHEDULED):
                await settle(self.app, self.backend, batch.id)
