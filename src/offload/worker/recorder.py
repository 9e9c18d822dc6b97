"""Applies outcomes to the backend through the lifecycle's transitions.

Completions are group-committed: while one ``job_complete_many`` is in flight the
next ones gather, so a busy worker writes hundreds per round trip and an idle one
writes each at once, with no timer adding latency. A write that fails for a
transient reason (connection lost, server restarting) is retried until the lease
would have expired anyway; after that the job is redelivered, which at-least-once
delivery already allows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from offload.backends.base import Backend
from offload.job import (
    Cancelled,
    Failed,
    Interrupted,
    Job,
    Lease,
    Outcome,
    Rejected,
    Snoozed,
    Succeeded,
)

log = logging.getLogger("offload.worker")
T = TypeVar("T")


class Recorder:
    # A service of the worker, woken by each success it queues; no timer.
    name = "recorder"
    interval = math.inf

    def __init__(
        self,
        backend: Backend,
        lease_seconds: float,
        max_batch: int = 500,
        on_batch_job_written: Callable[[str], None] | None = None,
    ) -> None:
        self.backend = backend
        # Jobs of a batch: once their outcome is stored, the batch may have ended.
        self.on_batch_job_written = on_batch_job_written
        self._batch_of: dict[str, str] = {}
        self.lease_seconds = lease_seconds
        self.max_batch = max_batch
        self._pending: list[tuple[Lease, bytes | None]] = []
        self.woken = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # One batch write at a time: a flush at shutdown must wait for the one the
        # loop has in flight, or it could return while that batch is unwritten.
        self._writing = asyncio.Lock()
        self.recorded = 0

    @property
    def pending_leases(self) -> list[Lease]:
        """Leases whose completion is not yet stored: the heartbeat keeps them alive."""
        return [lease for lease, _ in self._pending]

    async def record(self, job: Job, outcome: Outcome) -> None:
        """Apply one outcome; successes are queued for the next group commit."""
        lease = job.lease
        if isinstance(outcome, Succeeded):
            if job.batch_id is not None:
                self._batch_of[job.id] = job.batch_id
            self._pending.append((lease, outcome.result))
            self._idle.clear()
            self.woken.set()
            return
        try:
            await self._retrying(lambda: self._apply(lease, outcome))
        except Exception:
            log.exception("could not record %s of job %s; it will be redelivered",
                          type(outcome).__name__, job.id)  # fmt: skip
            return
        if job.batch_id is not None and self.on_batch_job_written is not None:
            self.on_batch_job_written(job.batch_id)

    async def _apply(self, lease: Lease, outcome: Outcome) -> object:
        b = self.backend
        match outcome:
            case Failed(error=error, discard=True):
                return await b.job_discard(lease, error, ran=True)
            case Rejected(error=error, discard=True):
                return await b.job_discard(lease, error, ran=False)
            case Failed(error=error, retry_in=retry_in):
                return await b.job_fail(lease, error, retry_in)
            case Rejected(error=error):
                return await b.job_reject(lease, error)
            case Interrupted(checkpoint=checkpoint):
                return await b.job_requeue(lease, checkpoint)
            case Cancelled():
                return await b.job_cancel_confirm(lease)
            case Snoozed(delay=delay, reason=reason):
                return await b.job_snooze(lease, delay, reason)
        raise TypeError(f"unknown outcome {outcome!r}")

    async def once(self) -> None:
        """One group commit: everything queued since the last one."""
        await self.flush()

    async def flush(self) -> None:
        async with self._writing:
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                applied = await self._retrying(functools.partial(self._complete, batch))
            except Exception:
                log.exception("dropping %d completion(s); the jobs will be redelivered", len(batch))
                for lease, _ in batch:
                    self._batch_of.pop(lease.job_id, None)
                continue
            self.recorded += len(batch)
            if self._batch_of:
                self._tell_batches(batch)
            refused = len(applied) - sum(applied)
            if refused:
                log.warning("%d completion(s) refused: their lease had been lost", refused)
        self._idle.set()

    def _tell_batches(self, written: list[tuple[Lease, bytes | None]]) -> None:
        for lease, _ in written:
            batch_id = self._batch_of.pop(lease.job_id, None)
            if batch_id is not None and self.on_batch_job_written is not None:
                self.on_batch_job_written(batch_id)

    async def _complete(self, batch: list[tuple[Lease, bytes | None]]) -> list[bool]:
        return await self.backend.job_complete_many(batch)

    async def drained(self) -> None:
        await self._idle.wait()

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.lease_seconds
        delay = 0.05
        while True:
            try:
                return await op()
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("backend write failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
