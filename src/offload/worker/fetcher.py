"""Leases jobs into free concurrency slots, waiting reactively when there are none.

It leases as many jobs as there are free slots (up to the fetch batch) in one
round trip, and when the queues are empty it waits on the backend's wake-up
signal (LISTEN/NOTIFY, blocking pop, in-process event) with the poll interval as
the fallback.

An idle worker waits through the contract's ``job_lease_on_wake``: a backend that
can lease in the same round trip as its wake-up (Redis) brings the jobs with it,
which saves two network hops on every new job; the others wait, then lease.
Such a wait is never cancelled half way, since the lease it carries would be lost
with its reply; a stop or a nudge interrupts it, and the jobs it took are started
as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from offload.backends.base import Backend
from offload.job import Job

log = logging.getLogger("offload.worker")


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
        # When the lease call whose jobs are being dispatched was made: their
        # leases were granted no earlier (the worker's self-fence counts from it).
        self.asked_at = time.monotonic()
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
        self.asked_at = time.monotonic()
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
        free = min(self.concurrency - self.busy(), self.batch)
        if free > 0:
            await self._lease_on_wake(self.backend, free)
            return
        await _first(
            self.backend.wait_for_jobs(self.queues, self.poll_interval),
            self.stopping.wait(),
            self.nudged.wait(),
        )

    async def _lease_on_wake(self, backend: Backend, free: int) -> None:
        """Wait and lease into ``free`` slots; while this waits no job starts, so
        the slots are still free when the jobs arrive. Awaited in this task, not
        beside it: the jobs start a few loop turns sooner."""
        if self.stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        interrupting: list[asyncio.Task[None]] = []

        def interrupt(watcher: asyncio.Task[Literal[True]]) -> None:
            if not watcher.cancelled() and not interrupting:
                interrupting.append(loop.create_task(_interrupt(backend)))

        watchers = [asyncio.ensure_future(self.stopping.wait()),
                    asyncio.ensure_future(self.nudged.wait())]  # fmt: skip
        for watcher in watchers:
            watcher.add_done_callback(interrupt)
        self.asked_at = time.monotonic()
        try:
            jobs = await backend.job_lease_on_wake(
                self.worker_id, self.queues, free, self.lease_seconds, self.poll_interval
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("waiting for jobs failed (%s); retrying after %ss", exc,
                        self.poll_interval)  # fmt: skip
            await _first(asyncio.sleep(self.poll_interval), self.stopping.wait())
            return
        finally:
            for watcher in watchers:
                watcher.cancel()
        for job in jobs:
            self.dispatch(job)
        if jobs:
            # The jobs an idle worker was woken for start first. The fetch loop
            # goes on to lease again at once, and that call's client-side work
            # runs before its first suspension: on Redis's pooled path, 0.3 ms
            # that every woken job waited for (a fifth of the idle latency).
            await asyncio.sleep(0)


async def _interrupt(backend: Backend) -> None:
    try:
        await backend.interrupt_wait()
    except Exception as exc:  # the wait still ends at its timeout
        log.debug("could not interrupt the wait for jobs: %s", exc)


async def _first(*aws: object) -> None:
    """Wait until the first awaitable finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
