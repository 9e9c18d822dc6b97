"""The soak's producer: it enqueues through broker outages and counts a job as
accepted only once a call storing it returned.

An enqueue that raised may or may not have stored its jobs (a commit whose
reply was lost, a crash between the write and the reply). Job ids are made by
the caller and enqueue is idempotent by id (``Backend.job_enqueue_many``: an
id that exists returns that job), so the producer sends the same jobs again
until a call returns. The ledger then cannot report a loss for a job whose
enqueue failed (it is never accepted without a call that returned it), nor
miss one the failed call stored (the retry returns it, marked ``duplicate``,
and it is counted as accepted like the others).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from offload import App, JobQuery, NewJob, PayloadTooLargeError
from offload.backends.base import Backend
from offload.errors import BackendError
from tests.faults.ledger import Ledger

T = TypeVar("T")
CHUNK = 500
OVERSIZED = "f.big"
"""The task the plan names for an oversized enqueue (scenario 15)."""


@dataclass
class Producer:
    app: App
    backend: Backend
    ledger: Ledger
    failed_calls: int = 0
    stored_by_failed: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        """The ids of ``jobs`` once stored; oversized ones are refused instead."""
        ids: list[str] = []
        for job in jobs:
            if job.task == OVERSIZED:
                await self.oversized()
        wanted = [j for j in jobs if j.task != OVERSIZED]
        for i in range(0, len(wanted), CHUNK):
            ids += await self._chunk(wanted[i : i + CHUNK])
        return ids

    async def _chunk(self, chunk: Sequence[NewJob]) -> list[str]:
        failed = False
        while True:
            try:
                stored = await self.backend.job_enqueue_many(chunk)
            except BackendError as exc:
                failed = True
                self.failed_calls += 1
                self.ledger.fault("enqueue_failed", count=len(chunk), error=str(exc)[:200])
                await asyncio.sleep(0.2)
                continue
            if [j.id for j in stored] != [j.id for j in chunk]:
                raise AssertionError("an enqueue returned other jobs than the ones it was given")
            if failed:
                self.stored_by_failed += sum(j.duplicate for j in stored)
            return [j.id for j in stored]

    async def oversized(self) -> None:
        """Scenario 15 through the task, as a caller enqueues: refused with a
        clear error before anything reaches the broker."""
        try:
            job = await self.app.get_task(OVERSIZED).enqueue_async("x" * (2 * 1024 * 1024))
        except PayloadTooLargeError as exc:
            self.refused += 1
            self.ledger.write(kind="enqueue", task=OVERSIZED, outcome="refused", error=str(exc))
        else:
            self.problems.append(f"15 {job.id}: a 2 MiB payload was accepted")

    async def nothing_oversized_stored(self) -> list[str]:
        found = await retried(lambda: self.app.list_jobs_async(JobQuery(task=OVERSIZED, limit=1)))
        return self.problems + [f"15 {j.id}: an oversized job was stored" for j in found]


async def retried(call: Callable[[], Awaitable[T]]) -> T:
    """``call`` made again while the broker is down (the soak's own outages)."""
    while True:
        try:
            return await call()
        except BackendError:
            await asyncio.sleep(0.2)
