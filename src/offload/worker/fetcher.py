"""Leases jobs into free concurrency slots, waiting reactively when there are none.

It leases as many jobs as there are free slots (up to the fetch batch) in one
round trip, and when the queues are empty it waits on the backend's wake-up
signal (LISTEN/NOTIFY, blocking pop, in-process event) with the poll interval as
the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from offload.backends.base import Backend
from offload.job import Job


class Fetcher:
    def __init__(
        self,
        backend: Backend,
        worker_id: str,
        queues: Sequence[str],
        *,
        concurrency: int,
        batch: int,
        lease_seconds: float,
        poll_interval: float,
        dispatch: Callable[[Job], None],
        busy: Callable[[], int],
    ) -> None:
        self.backend = backend
        self.worker_id = worker_id
        self.queues = list(queues)
        self.concurrency = concurrency
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.dispatch = dispatch
        self.busy = busy
        self.slot_freed = asyncio.Event()
        self.stopping = asyncio.Event()
        self.nudged = asyncio.Event()

    def wake_in(self, seconds: float) -> None:
        """Look again after ``seconds`` instead of the full poll interval: this
        worker knows a retry it just scheduled is due then."""
        if seconds < self.poll_interval:
            asyncio.get_running_loop().call_later(seconds, self.nudged.set)

    async def fetch_once(self) -> int:
        """Lease into the free slots now; returns how many jobs started."""
        free = self.concurrency - self.busy()
        if free <= 0:
            return 0
        jobs = await self.backend.job_lease(
            self.worker_id, self.queues, min(free, self.batch), self.lease_seconds
        )
        for job in jobs:
            self.dispatch(job)
        return len(jobs)

    async def wait_for_slot(self) -> None:
        self.slot_freed.clear()
        if self.busy() < self.concurrency:
            return
        await _first(self.slot_freed.wait(), self.stopping.wait())

    async def wait_for_work(self) -> None:
        self.nudged.clear()
        await _first(
            self.backend.wait_for_jobs(self.queues, self.poll_interval),
            self.stopping.wait(),
            self.nudged.wait(),
        )


async def _first(*aws: object) -> None:
    """Wait until the first awaitable finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
