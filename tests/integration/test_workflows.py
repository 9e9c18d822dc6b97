"""Workflows through a running worker on every backend: the diamond runs in
order with results handed down, a dead parent cancels everything after it with
the reason, and bad graphs are refused before anything is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from offload import (
    App,
    DependencyError,
    EventKind,
    JobContext,
    JobQuery,
    State,
    chain,
    chord,
    group,
    step,
)
from offload.testing import wait_for_job
from offload.worker import Worker


@asynccontextmanager
async def running(app: App, **options: Any) -> AsyncIterator[Worker]:
    options.setdefault("handle_signals", False)
    options.setdefault("poll_interval", 0.05)
    worker = Worker(app, ["default"], **options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop(force=True)
        await task


def diamond_tasks(app: App, order: list[str]) -> dict[str, Any]:
    @app.task(max_attempts=1)
    async def top(n: int) -> int:
        order.append("A")
        if n < 0:
            raise ValueError("A refuses")
        return n

    @app.task
    async def side(name: str, ctx: JobContext) -> str:
        order.append(name)
        (parent,) = ctx.parents.values()
        return f"{name}{top.result_of(parent)}"

    @app.task
    async def join(ctx: JobContext) -> list[str]:
        order.append("D")
        return sorted(side.result_of(p) for p in ctx.parents.values())

    return {"top": top, "side": side, "join": join}


async def test_a_diamond_runs_in_order_and_the_join_sees_both_results(app: App) -> None:
    order: list[str] = []
    t = diamond_tasks(app, order)
    flow = await app.workflow_async({
        "A": t["top"].prepare(7),
        "B": step(t["side"].prepare("B"), after=["A"]),
        "C": step(t["side"].prepare("C"), after=["A"]),
        "D": step(t["join"].prepare(), after=["B", "C"]),
    }, name="diamond")  # fmt: skip
    assert flow.state == "running"
    assert sorted(flow.edges) == [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]
    assert flow.job("D").state is State.SCHEDULED
    async with running(app):
        done = await wait_for_job(app, flow.job("D").id)
    assert done.state is State.SUCCEEDED
    assert done.result == ["B7", "C7"]
    assert order[0] == "A"
    assert order[-1] == "D"
    assert sorted(order[1:3]) == ["B", "C"]
    final = await app.get_workflow_async(flow.id)
    assert final.state == "succeeded"
    kinds = [e.kind for e in await app.events_async(flow.job("B").id)]
    assert kinds.count(EventKind.RELEASED) == 1


async def test_a_dead_parent_cancels_everything_after_it_with_the_reason(app: App) -> None:
    order: list[str] = []
    t = diamond_tasks(app, order)
    a = t["top"].prepare(-1)
    b, c = t["side"].prepare("B"), t["side"].prepare("C")
    flow = await app.workflow_async(chain(a, group(b, c), t["join"].prepare()))
    async with running(app):
        ends = [await wait_for_job(app, j.id) for j in flow.jobs.values()]
    assert [j.state for j in ends] == [State.DEAD, State.CANCELLED, State.CANCELLED,
                                       State.CANCELLED]  # fmt: skip
    assert order == ["A"]
    for job in ends[1:3]:
        last = (await app.events_async(job.id))[-1]
        assert (last.kind, last.data["reason"]) == (EventKind.CANCELLED, f"parent {a.id} dead")
    d_last = (await app.events_async(ends[3].id))[-1]
    assert d_last.data["reason"].startswith("parent ")
    assert (await app.get_workflow_async(flow.id)).state == "dead"


async def test_run_anyway_releases_after_a_failed_parent(app: App) -> None:
    # The parent is in no batch of the child's: the batch sweep releases the child.
    app.settings = app.settings.model_copy(update={"batch_sweep_interval": 0.2})

    @app.task(max_attempts=1)
    async def boom() -> None:
        raise ValueError("boom")

    @app.task
    async def cleanup(ctx: JobContext) -> str:
        (parent,) = ctx.parents.values()
        return parent.state.value

    first = await boom.enqueue_async()
    after = await cleanup.options(depends_on=[first], on_parent_failure="run").enqueue_async()
    assert after.state is State.SCHEDULED
    async with running(app):
        done = await wait_for_job(app, after.id, timeout=20)
    assert (done.state, done.result) == (State.SUCCEEDED, "dead")


async def test_a_chord_joins_a_fan_out(app: App) -> None:
    @app.task
    async def square(n: int) -> int:
        return n * n

    @app.task
    async def total(ctx: JobContext) -> int:
        return sum(square.result_of(p) for p in ctx.parents.values())

    flow = await app.workflow_async(chord([square.prepare(n) for n in range(5)], total.prepare()))
    async with running(app, concurrency=4):
        done = await wait_for_job(app, flow.job("total-2").id)
    assert done.result == 30


async def test_a_dependent_of_an_ended_job_is_released_at_enqueue(app: App) -> None:
    @app.task
    async def noop() -> None:
        return None

    first = await noop.enqueue_async()
    async with running(app):
        await wait_for_job(app, first.id)
    later = await noop.options(depends_on=[first.id]).enqueue_async()
    assert later.state is State.QUEUED
    assert [e.kind for e in await app.events_async(later.id)][-1] is EventKind.RELEASED


async def test_unknown_parents_and_cycles_are_refused(app: App) -> None:
    @app.task
    async def noop() -> None:
        return None

    with pytest.raises(DependencyError, match="not a job of tenant"):
        await noop.options(depends_on=["0190c8f0-0000-7000-8000-000000000000"]).enqueue_async()
    a, b = noop.prepare(), noop.prepare()
    with pytest.raises(DependencyError, match="cycle"):
        await app.workflow_async({"a": step(a, after=["b"]), "b": step(b, after=["a"])})
    with pytest.raises(DependencyError, match="which is no step"):
        await app.workflow_async({"a": step(a, after=["nope"])})
    with pytest.raises(DependencyError, match="on_parent_failure"):
        await noop.options(depends_on=[a], on_parent_failure="maybe").enqueue_async()  # type: ignore[typeddict-item]
    assert await app.list_jobs_async(JobQuery()) == []


async def test_cancelling_a_workflow_cancels_every_job_not_ended(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    @app.task
    async def never() -> None:
        raise AssertionError("a cancelled workflow ran a later step")

    flow = await app.workflow_async(chain(forever.prepare(), never.prepare(), never.prepare()))
    async with running(app, lease_seconds=60):
        await asyncio.wait_for(started.wait(), 10)
        await app.cancel_workflow_async(flow.id)
        ends = [await wait_for_job(app, j.id) for j in flow.jobs.values()]
    assert {j.state for j in ends} == {State.CANCELLED}
    assert (await app.get_workflow_async(flow.id)).state == "cancelled"
