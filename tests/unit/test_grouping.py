"""Concurrent enqueue calls share backend calls: the first goes out at once,
the ones that arrive while it is in flight go out together after it, each
caller gets its own jobs back, and one caller's failure is not another's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from offload import App
from offload.backends.base import Backend
from offload.errors import BackendError
from offload.grouping import EnqueueGroup
from offload.job import Job, NewJob

DEADLINE = 5.0


class Gated:
    """The real memory backend's enqueue, recording each call's task names;
    the first call waits for ``gate`` so that the next ones queue behind it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.broken: Exception | None = None

    async def job_enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        self.calls.append([j.task for j in jobs])
        self.started.set()
        if len(self.calls) == 1:
            await self.gate.wait()
        if self.broken is not None:
            raise self.broken
        if any(j.task == "t.poison" for j in jobs):
            raise ValueError("poison refused")
        return await self.backend.job_enqueue_many(jobs)


@pytest.fixture
def app() -> App:
    app = App("memory://")

    @app.task(name="t.a")
    def a(n: int) -> int:
        return n

    @app.task(name="t.poison")
    def poison(n: int) -> int:
        return n

    return app


async def _group(app: App) -> tuple[EnqueueGroup, Gated, asyncio.Task[list[Job]]]:
    """A group whose first call (job 0) is in flight, held at the gate."""
    gated = Gated(await app.backend())
    group = EnqueueGroup(gated)  # type: ignore[arg-type]  # only enqueue is called
    first = asyncio.create_task(group.enqueue([_job(app, "t.a", 0)]))
    await asyncio.wait_for(gated.started.wait(), DEADLINE)
    return group, gated, first


def _job(app: App, task: str, n: int) -> NewJob:
    return app.tasks[task].new_job((n,), {})


def _n(job: Job) -> int:
    value: int = json.loads(job.payload)["n"]
    return value


async def test_calls_that_arrive_during_one_in_flight_go_out_together(app: App) -> None:
    group, gated, first = await _group(app)
    rest = [asyncio.create_task(group.enqueue([_job(app, "t.a", n), _job(app, "t.a", n + 100)]))
            for n in range(1, 6)]  # fmt: skip
    await asyncio.sleep(0)
    gated.gate.set()
    stored = await asyncio.wait_for(asyncio.gather(first, *rest), DEADLINE)
    assert [len(c) for c in gated.calls] == [1, 10]  # the first alone, at once; then one call
    assert [[_n(j) for j in s] for s in stored] == [[0], *([n, n + 100] for n in range(1, 6))]
    assert all(not j.duplicate for s in stored for j in s)


async def test_one_callers_failure_is_not_the_others(app: App) -> None:
    group, gated, first = await _group(app)
    good = asyncio.create_task(group.enqueue([_job(app, "t.a", 1)]))
    bad = asyncio.create_task(group.enqueue([_job(app, "t.poison", 2)]))
    also_good = asyncio.create_task(group.enqueue([_job(app, "t.a", 3)]))
    await asyncio.sleep(0)
    gated.gate.set()
    await asyncio.wait_for(asyncio.wait([first, good, bad, also_good]), DEADLINE)
    with pytest.raises(ValueError, match="poison"):
        bad.result()
    assert [_n(j) for j in good.result() + also_good.result()] == [1, 3]
    backend = await app.backend()
    for job in good.result() + also_good.result():
        assert await backend.job_get(job.id) is not None
    # The shared call failed, then each caller's jobs went on their own.
    assert gated.calls[1:] == [["t.a", "t.poison", "t.a"], ["t.a"], ["t.poison"], ["t.a"]]


async def test_a_broker_failure_fails_every_caller_of_the_call_without_retries(app: App) -> None:
    group, gated, first = await _group(app)
    waiting = [asyncio.create_task(group.enqueue([_job(app, "t.a", n)])) for n in (1, 2)]
    await asyncio.sleep(0)
    gated.broken = BackendError("the broker went away")
    gated.gate.set()
    await asyncio.wait_for(asyncio.wait([first, *waiting]), DEADLINE)
    for task in (first, *waiting):
        with pytest.raises(BackendError):
            task.result()
    assert len(gated.calls) == 2


async def test_a_cancelled_caller_leaves_the_others_theirs(app: App) -> None:
    group, gated, first = await _group(app)
    gone = asyncio.create_task(group.enqueue([_job(app, "t.a", 1)]))
    kept = asyncio.create_task(group.enqueue([_job(app, "t.a", 2)]))
    await asyncio.sleep(0)
    gone.cancel()
    gated.gate.set()
    [stored] = await asyncio.wait_for(kept, DEADLINE)
    await first
    assert gone.cancelled()
    assert _n(stored) == 2
    assert gated.calls[1:] == [["t.a"]]  # the cancelled caller's job was not sent


async def test_the_app_groups_concurrent_enqueues(app: App) -> None:
    """Through ``enqueue_async``: every job stored, each caller's own job back."""
    task = app.tasks["t.a"]
    jobs = await asyncio.gather(*(task.enqueue_async(n) for n in range(50)))  # type: ignore[attr-defined]
    assert [_n(j) for j in jobs] == list(range(50))
    backend = await app.backend()
    stored = [await backend.job_get(j.id) for j in jobs]
    assert all(s is not None for s in stored)
    await app.close_async()
