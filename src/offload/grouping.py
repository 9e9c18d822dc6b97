"""Concurrent enqueue calls on one backend share its round trips (group commit).

An HTTP server enqueues one job per request, and 32 requests at once made 32
backend calls: 32 transactions on SQLite (each one hop to its writer thread and
one commit), 32 script calls on Redis (each paying the script's fixed cost), 32
round trips on PostgreSQL. Every backend already stores a list of jobs in one
call, atomically, as bulk enqueue does. So a call that finds another in flight
waits for it and then goes out with every call that queued meanwhile, in one
``job_enqueue_many``. A call that finds nothing in flight goes out at once: no
timer, no added latency on an idle app; batches form only under concurrency,
where they shorten the queue the calls would have formed anyway.

Each caller gets its own jobs back, in its order. A failure that belongs to one
caller's jobs (a finished batch, a dependency) must not fail the others, so a
shared call that raises anything but ``BackendError`` (the broker is down or
refused the call: everyone's problem) is retried call by call. A retried job
that the failed call had stored comes back as stored (enqueue is idempotent by
job id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from offload.backends import Backend
from offload.errors import BackendError
from offload.job import Job, NewJob

_Call = tuple[Sequence[NewJob], "asyncio.Future[list[Job]]"]


class EnqueueGroup:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._queued: list[_Call] = []
        self._sending: asyncio.Task[None] | None = None

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        if self._sending is None:
            # Nothing in flight: this call goes out alone, now.
            self._sending = asyncio.current_task()
            try:
                return await self.backend.job_enqueue_many(jobs)
            finally:
                self._sending = None
                self._flush_queued()
        done: asyncio.Future[list[Job]] = asyncio.get_running_loop().create_future()
        self._queued.append((jobs, done))
        return await done

    def _flush_queued(self) -> None:
        if self._queued and self._sending is None:
            self._sending = asyncio.ensure_future(self._send_queued())

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                calls = [c for c in self._queued if not c[1].done()]  # not cancelled
                self._queued = []
                if calls:
                    await self._send(calls)
        finally:
            self._sending = None
            self._flush_queued()

    async def _send(self, calls: list[_Call]) -> None:
        jobs = [job for part, _ in calls for job in part]
        try:
            stored = await self.backend.job_enqueue_many(jobs)
        except asyncio.CancelledError:
            for _, done in calls:
                done.cancel()
            raise
        except BackendError as exc:
            for _, done in calls:
                _settle(done, exc=exc)
            return
        except Exception as exc:
            if len(calls) == 1:
                _settle(calls[0][1], exc=exc)
            else:
                await self._one_by_one(calls)
            return
        at = 0
        for part, done in calls:
            _settle(done, stored[at : at + len(part)])
            at += len(part)

    async def _one_by_one(self, calls: list[_Call]) -> None:
        for part, done in calls:
            try:
                _settle(done, await self.backend.job_enqueue_many(part))
            except Exception as exc:
                _settle(done, exc=exc)


def _settle(
    done: asyncio.Future[list[Job]],
    value: list[Job] | None = None,
    exc: BaseException | None = None,
) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(value or [])
