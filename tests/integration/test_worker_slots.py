"""A run stopped before its task starts, while it waits at a limit or for its
parents' results, still frees its worker slot and its limit slot, and its job
ends as that stop says: cancelled, redelivered after its lease, or handed back.

The wait is held open by an event where the worker would otherwise pass in a
few milliseconds, so the stop always lands in it. What happens there is the
worker's own doing; two backends suffice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from offload import App, State
from offload.job import Job
from offload.task import Task
from offload.testing import eventually, wait_for_job
from offload.worker import Worker
from offload.worker import worker as worker_module
from offload.worker.limits import LimitGate

from .test_orchestration import running

LOCAL = pytest.mark.parametrize("backend_url", ["memory", "sqlite"], indirect=True)


class Door:
    """Holds each job in ``hold`` once, at the point patched, until its asyncio
    task is cancelled; ``reached`` is set when one is held."""

    def __init__(self) -> None:
        self.hold: set[str] = set()
        self.reached = asyncio.Event()

    async def pass_through(self, job: Job) -> None:
        if job.id not in self.hold:
            return
        self.hold.discard(job.id)
        self.reached.set()
        await asyncio.Event().wait()


@pytest.fixture
def at_limit(monkeypatch: pytest.MonkeyPatch) -> Door:
    """Held after the job's limit slot was taken (its rate still to check)."""
    door = Door()
    admit = LimitGate.admit

    async def held_admit(gate: LimitGate, job: Job, task: Task[Any]) -> Any:
        refused = await admit(gate, job, task)
        await door.pass_through(job)
        return refused

    monkeypatch.setattr(LimitGate, "admit", held_admit)
    return door


@pytest.fixture
def at_parents(monkeypatch: pytest.MonkeyPatch) -> Door:
    """Held while the worker reads the results of the job's parents."""
    door = Door()
    read = worker_module.parents_of

    async def held_read(backend: Any, job: Job) -> dict[str, Job]:
        await door.pass_through(job)
        return await read(backend, job)

    monkeypatch.setattr(worker_module, "parents_of", held_read)
    return door


async def _both_slots_serve(app: App, worker: Worker) -> None:
    """Two jobs that each wait for the other end only if two run at once."""
    pair = asyncio.Barrier(2)

    @app.task(name="slots.pair")
    async def meet() -> None:
        await asyncio.wait_for(pair.wait(), 10)

    jobs = await meet.enqueue_many_async([(), ()])
    for job in jobs:
        assert (await wait_for_job(app, job.id, timeout=15)).state is State.SUCCEEDED

    async def idle() -> bool:
        return not worker.running

    await eventually(idle)


@LOCAL
@pytest.mark.parametrize("stop", ["cancel", "give_up"])
async def test_a_run_stopped_at_its_limit_frees_both_slots(
    app: App, at_limit: Door, stop: str
) -> None:
    app.settings = app.settings.model_copy(update={"recover_interval": 0.1})

    @app.task(name="slots.limited", concurrency_limit=1)
    async def limited() -> str:
        return "ran"

    stuck = await limited.options(queue="held").enqueue_async()
    at_limit.hold.add(stuck.id)
    async with running(app, "held", "default", concurrency=2, lease_seconds=1.0) as worker:
        await asyncio.wait_for(at_limit.reached.wait(), 10)
        # Its queue paused, a run given up is not leased again (which would
        # hide a lost slot behind the new run) until the slots were shown free.
        await app.pause_async(queue="held")
        if stop == "cancel":
            await app.cancel_async(stuck.id)
            cancelled = await wait_for_job(app, stuck.id)
            assert (cancelled.state, cancelled.attempts) == (State.CANCELLED, 1)
        else:
            worker._give_up({stuck.id})  # what the self-fence does past its deadline
        # The limit's only slot was given back: another job of the task runs.
        other = await limited.enqueue_async()
        assert (await wait_for_job(app, other.id, timeout=15)).state is State.SUCCEEDED
        await _both_slots_serve(app, worker)
        await app.resume_async(queue="held")
        ended = await wait_for_job(app, stuck.id, timeout=15)
    if stop == "give_up":  # nothing recorded: redelivered after its lease, and ran then
        assert (ended.state, ended.attempts, ended.result) == (State.SUCCEEDED, 2, "ran")


@LOCAL
async def test_a_shutdown_while_reading_parents_hands_the_job_back(
    app: App, at_parents: Door
) -> None:
    child = await _child_held_at_its_parents(app, at_parents)
    async with running(app, concurrency=2, grace_period=0.1) as worker:
        await asyncio.wait_for(at_parents.reached.wait(), 10)
        worker.stop()
    back = await app.get_job_async(child.id)
    assert (back.state, back.attempts) == (State.QUEUED, 0)  # never ran: not counted
    assert not worker.running
    async with running(app, concurrency=2) as again:
        done = await wait_for_job(app, child.id, timeout=15)
        assert (done.state, done.result) == (State.SUCCEEDED, 2)
        await _both_slots_serve(app, again)


@LOCAL
async def test_a_cancel_while_reading_parents_ends_the_job_cancelled(
    app: App, at_parents: Door
) -> None:
    child = await _child_held_at_its_parents(app, at_parents)
    async with running(app, concurrency=2) as worker:
        await asyncio.wait_for(at_parents.reached.wait(), 10)
        await app.cancel_async(child.id)
        assert (await wait_for_job(app, child.id)).state is State.CANCELLED
        await _both_slots_serve(app, worker)


async def _child_held_at_its_parents(app: App, at_parents: Door) -> Job:
    """A workflow child (returning 2) whose run will stop while reading its parent.
    Its parent is in no batch of its own, so the batch sweep releases it."""
    app.settings = app.settings.model_copy(update={"batch_sweep_interval": 0.2})

    @app.task(name="slots.step")
    async def step(n: int) -> int:
        return n

    parent = await step.enqueue_async(1)
    child = await step.options(depends_on=[parent.id]).enqueue_async(2)
    at_parents.hold.add(child.id)
    return child
