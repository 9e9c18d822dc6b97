"""Through a worker on every backend: a task with ``dead_letter=False`` leaves
nothing in the dead letter, and the purge pass takes a finished batch with its
jobs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from offload import App, NotFoundError, State
from offload.batch import settle
from offload.job import DISCARD_META, JobQuery
from offload.lifecycle import EventKind
from offload.testing import drain, eventually
from offload.worker.services.purge import Purge


async def test_a_task_without_dead_letter_discards_its_last_failure(app: App) -> None:
    @app.task(max_attempts=1, dead_letter=False)
    async def flaky() -> None:
        raise RuntimeError("still broken")

    job = await flaky.enqueue_async()
    await drain(app)
    done = await app.get_job_async(job.id)
    assert done.state is State.CANCELLED
    assert done.attempts == 1
    assert done.error is not None
    assert done.error.message == "still broken"
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert kinds[-2:] == [EventKind.FAILED, EventKind.DISCARDED]
    assert EventKind.DEAD not in kinds
    backend = await app.backend()
    assert await backend.job_list(JobQuery(states=[State.DEAD], task=flaky.name)) == []


async def test_an_invalid_payload_of_such_a_task_is_discarded_without_running(app: App) -> None:
    ran: list[int] = []

    @app.task(dead_letter=False)
    async def strict(n: int) -> None:
        ran.append(n)

    bad = replace(strict.prepare(1), payload=b'{"n": "not a number"}')
    [job] = await (await app.backend()).job_enqueue_many([bad])
    await drain(app)
    done = await app.get_job_async(job.id)
    assert ran == []
    assert done.state is State.CANCELLED
    assert done.error is not None
    assert done.error.type == "PayloadError"
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert kinds[-1] is EventKind.DISCARDED
    assert EventKind.FAILED not in kinds


async def test_a_worker_dying_on_the_last_attempt_of_such_a_task_discards_it(app: App) -> None:
    """The lease runs out (the worker was killed): recovery, which knows no
    tasks, reads the choice the app stored on the job at enqueue."""

    @app.task(max_attempts=1, dead_letter=False)
    async def fragile() -> None: ...

    job = await fragile.enqueue_async()
    assert job.meta[DISCARD_META] is True
    backend = await app.backend()
    [leased] = await backend.job_lease("doomed-worker", [job.queue], 1, 0.2)
    assert leased.id == job.id

    async def recovered() -> bool:
        await backend.job_recover_expired()
        return (await app.get_job_async(job.id)).state is not State.RUNNING

    assert await eventually(recovered, timeout=10)
    done = await app.get_job_async(job.id)
    assert (done.state, done.attempts) == (State.CANCELLED, 1)
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert kinds[-2:] == [EventKind.LEASE_EXPIRED, EventKind.DISCARDED]
    assert await backend.job_list(JobQuery(states=[State.DEAD], task=fragile.name)) == []


async def test_a_task_with_dead_letter_still_dies(app: App) -> None:
    @app.task(max_attempts=1)
    async def broken() -> None:
        raise RuntimeError("dead on purpose")

    job = await broken.enqueue_async()
    await drain(app)
    assert (await app.get_job_async(job.id)).state is State.DEAD


async def test_purge_takes_a_finished_batch_with_its_jobs(app: App) -> None:
    @app.task
    async def part(n: int) -> int:
        return n

    made = await app.batch_async([part.prepare(1), part.prepare(2)])
    await drain(app)
    backend = await app.backend()
    await settle(app, backend, made.id)
    finished = (await app.get_batch_async(made.id)).finished_at
    assert finished is not None

    async def clock_past() -> bool:  # past the batch's end by more than the retention
        return await backend.now() > finished + timedelta(seconds=0.01)

    await eventually(clock_past)
    assert await Purge(backend, retention=0.001, every=60).purge() >= 2
    assert await backend.batch_get(made.id) is None
    with pytest.raises(NotFoundError):
        await app.get_batch_async(made.id)
