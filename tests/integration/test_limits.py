"""Limits and the worker registry through running workers on every backend."""

from __future__ import annotations

import asyncio
import time

from offload import App, EventKind, State
from offload.job import JobQuery
from offload.testing import eventually, wait_for_job

from .test_orchestration import running


async def test_a_concurrency_limit_holds_across_two_workers(app: App) -> None:
    now_running = 0
    most = 0
    # Jobs run in pairs: the limit's two slots must both be usable at once, and
    # a third job let in beside a pair would show in ``most``.
    pair = asyncio.Barrier(2)

    @app.task(concurrency_limit=2)
    async def limited(n: int) -> int:
        nonlocal now_running, most
        now_running += 1
        most = max(most, now_running)
        await asyncio.wait_for(pair.wait(), 10)
        now_running -= 1
        return n

    jobs = await limited.enqueue_many_async([(i,) for i in range(8)])
    async with (
        running(app, worker_id="w1", concurrency=4),
        running(app, worker_id="w2", concurrency=4),
    ):

        async def all_done() -> bool:
            got = [await app.get_job_async(j.id) for j in jobs]
            return all(j.state is State.SUCCEEDED for j in got)

        await eventually(all_done, timeout=30)
    assert most == 2
    done = [await app.get_job_async(j.id) for j in jobs]
    assert all(j.attempts == 1 for j in done), "a snooze must not count as an attempt"
    kinds = {e.kind for j in jobs for e in await app.events_async(j.id)}
    assert EventKind.SNOOZED in kinds


async def test_a_keyed_limit_applies_per_argument(app: App) -> None:
    active: dict[str, int] = {}
    most: dict[str, int] = {}

    @app.task(concurrency_limit=1, limit_key="host:{host}")
    async def fetch(host: str, n: int) -> None:
        active[host] = active.get(host, 0) + 1
        most[host] = max(most.get(host, 0), active[host])
        await asyncio.sleep(0.03)
        active[host] -= 1

    jobs = await fetch.enqueue_many_async(
        [{"host": h, "n": i} for i in range(3) for h in ("a", "b")]
    )
    async with running(app, concurrency=6):

        async def all_done() -> bool:
            got = [await app.get_job_async(j.id) for j in jobs]
            return all(j.state is State.SUCCEEDED for j in got)

        await eventually(all_done, timeout=30)
    assert most == {"a": 1, "b": 1}


async def test_a_rate_limit_spaces_starts(app: App) -> None:
    starts: list[float] = []

    @app.task(rate_limit="2/s")
    async def tick(n: int) -> None:
        starts.append(time.monotonic())

    await tick.enqueue_many_async([(i,) for i in range(5)])
    async with running(app, concurrency=5):

        async def all_started() -> bool:
            return len(starts) == 5

        await eventually(all_started, timeout=30)
    starts.sort()
    # 2 per sliding second: the 3rd start comes a second after the 1st, the 5th
    # a second after the 3rd (small slack for the clocks of two processes).
    assert starts[2] - starts[0] >= 0.9
    assert starts[4] - starts[2] >= 0.9


async def test_workers_are_listed_with_their_jobs_and_leave_on_stop(app: App) -> None:
    # The registry beats with the heartbeat (at most every 2 s): sooner here.
    app.settings = app.settings.model_copy(update={"heartbeat_interval": 0.3})
    started = asyncio.Event()
    release = asyncio.Event()

    @app.task
    async def hold() -> None:
        started.set()
        await release.wait()

    job = await hold.enqueue_async()
    async with running(app, worker_id="registry-w1") as worker:
        await asyncio.wait_for(started.wait(), 10)

        async def listed() -> list[str] | None:
            for w in await app.workers_async():
                if w.id == "registry-w1" and job.id in w.job_ids:
                    return w.job_ids
            return None

        assert await eventually(listed, timeout=10) == [job.id]
        [me] = [w for w in await app.workers_async() if w.id == "registry-w1"]
        assert (me.queues, me.concurrency) == (["default"], worker.concurrency)
        release.set()
        # Leaving the block stops the worker at once (force): wait for the
        # completion to be stored first, or a loaded machine hands the job back.
        done = await wait_for_job(app, job.id, timeout=10)
    assert "registry-w1" not in [w.id for w in await app.workers_async()]
    assert done.state is State.SUCCEEDED
    assert (await app.list_jobs_async(JobQuery(task=hold.name)))[0].state is State.SUCCEEDED
