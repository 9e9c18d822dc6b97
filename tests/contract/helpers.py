"""Small builders and bounded polls shared by the contract tests.

The contract suite talks to a ``Backend`` directly: no App, no worker, no
serializer, so a failure points at the backend and nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from uuid_utils import uuid7

from offload.backends import Backend
from offload.job import ErrorInfo, Job, NewJob
from offload.lifecycle import EventKind

T = TypeVar("T")

POLL_TIMEOUT = 5.0
CLOCK_SLACK = timedelta(seconds=2)
"""How far a stored timestamp may sit from the test's own reading of the
backend clock: generous, since the assertions are about sense, not speed."""

BOOM = ErrorInfo("ValueError", "boom", "Traceback: ...")


def new_job(
    task: str = "tests.echo",
    *,
    queue: str = "default",
    tenant: str = "default",
    priority: int = 0,
    max_attempts: int = 3,
    timeout: float | None = None,
    delay: float = 0.0,
    run_at: datetime | None = None,
    unique_key: str | None = None,
    payload: bytes = b'{"x":1}',
    meta: dict[str, Any] | None = None,
    batch_id: str | None = None,
) -> NewJob:
    return NewJob(
        id=str(uuid7()), task=task, payload=payload, queue=queue, tenant=tenant,
        priority=priority, max_attempts=max_attempts, timeout=timeout, delay=delay,
        run_at=run_at, unique_key=unique_key, meta=meta or {}, batch_id=batch_id,
    )  # fmt: skip


async def enqueue(backend: Backend, **fields: Any) -> Job:
    """One job stored through ``job_enqueue_many``."""
    jobs = await backend.job_enqueue_many([new_job(**fields)])
    assert len(jobs) == 1
    return jobs[0]


async def lease_one(
    backend: Backend,
    queues: Sequence[str] = ("default",),
    *,
    lease_for: float = 30.0,
    worker: str = "worker-1",
) -> Job:
    """Lease exactly one job, failing the test when none is available."""
    jobs = await backend.job_lease(worker, list(queues), 1, lease_for)
    assert len(jobs) == 1, f"expected one leasable job in {queues}, got {len(jobs)}"
    return jobs[0]


async def enqueue_and_lease(backend: Backend, *, lease_for: float = 30.0, **fields: Any) -> Job:
    """A fresh running job in its own queue, so other jobs cannot interfere."""
    fields.setdefault("queue", f"q-{uuid7()}")
    job = await enqueue(backend, **fields)
    leased = await lease_one(backend, [job.queue], lease_for=lease_for)
    assert leased.id == job.id
    return leased


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = POLL_TIMEOUT, what: str
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def recover(backend: Backend, *job_ids: str) -> Job:
    """Call ``job_recover_expired`` until it has handed back every one of
    ``job_ids``; returns the first of them as recovered."""
    seen: dict[str, Job] = {}

    async def check() -> bool:
        seen.update((j.id, j) for j in await backend.job_recover_expired() if j.id in job_ids)
        return len(seen) == len(job_ids)

    await eventually(check, what=f"leases of {job_ids} recovered")
    return seen[job_ids[0]]


async def lease_when_due(backend: Backend, queue: str) -> Job:
    """Poll ``job_lease`` until a job of ``queue`` comes due."""

    async def check() -> Job | None:
        jobs = await backend.job_lease("worker-1", [queue], 1, 30.0)
        return jobs[0] if jobs else None

    return await eventually(check, what=f"a job of {queue} due")


async def clock_past(backend: Backend, moment: datetime) -> None:
    """Wait until the backend's clock reads later than ``moment``."""

    async def check() -> bool:
        return await backend.now() > moment

    await eventually(check, what=f"backend clock past {moment}")


async def kinds(backend: Backend, job_id: str) -> list[EventKind]:
    return [event.kind for event in await backend.event_list(job_id)]


async def must_get(backend: Backend, job_id: str, tenant: str | None = None) -> Job:
    job = await backend.job_get(job_id, tenant)
    assert job is not None, f"job {job_id} vanished"
    return job


def near(moment: datetime | None, expected: datetime, slack: timedelta = CLOCK_SLACK) -> bool:
    return moment is not None and abs(moment - expected) <= slack


@asynccontextmanager
async def opened_clone(backend: Backend) -> AsyncIterator[Backend]:
    other = backend.clone()
    await other.open()
    try:
        yield other
    finally:
        await other.close()
