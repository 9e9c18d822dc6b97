"""Orchestration through a running worker on every backend: pause and resume,
prompt cancellation, schedules fired once by several workers, batches whose
continuation runs once."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from offload import App, BatchFinishedError, JobContext, JobNotFoundError, State
from offload.job import JobQuery, NewJob
from offload.middleware import Middleware
from offload.schedule import CronRule
from offload.testing import drain, eventually, wait_for_job
from offload.worker import Worker
from offload.worker.services.purge import Purge
from offload.worker.services.scheduler import Scheduler


@asynccontextmanager
async def running(app: App, *queues: str, **options: Any) -> AsyncIterator[Worker]:
    options.setdefault("handle_signals", False)
    options.setdefault("poll_interval", 0.05)
    worker = Worker(app, list(queues) or ["default"], **options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop(force=True)
        await task


async def test_a_paused_queue_is_not_started_while_others_run(app: App) -> None:
    @app.task
    async def noop() -> str:
        return "ok"

    await app.pause_async(queue="slow")
    held = await noop.options(queue="slow").enqueue_async()
    async with running(app, "slow", "fast"):
        control = await noop.options(queue="fast").enqueue_async()
        await wait_for_job(app, control.id)
        # The worker leased "fast" after looking at "slow" first: the pause held.
        assert (await app.get_job_async(held.id)).state is State.QUEUED
        assert await app.resume_async(queue="slow") is True
        done = await wait_for_job(app, held.id)
    assert done.state is State.SUCCEEDED


async def test_a_paused_tenant_waits_while_other_tenants_run(app: App) -> None:
    @app.task
    async def noop() -> None:
        return None

    await app.pause_async(tenant="acme")
    held = await noop.options(tenant="acme").enqueue_async()
    async with running(app):
        other = await noop.options(tenant="globex").enqueue_async()
        await wait_for_job(app, other.id)
        assert (await app.get_job_async(held.id)).state is State.QUEUED
        await app.resume_async(tenant="acme")
        assert (await wait_for_job(app, held.id)).state is State.SUCCEEDED
    assert [(p.tenant, p.queue) for p in await app.pauses_async()] == []


async def test_a_cancelled_running_async_job_is_stopped_by_the_cancel_check(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    # A 60 s lease puts the heartbeat 20 s apart and the cancel check 0.2 s apart:
    # a job cancelled well inside the first heartbeat period was stopped by the
    # check. The 5 s bound is that margin, not a latency target (bench/ has those).
    job = await forever.enqueue_async()
    async with running(app, lease_seconds=60):
        await asyncio.wait_for(started.wait(), 10)
        await app.cancel_async(job.id)
        done = await wait_for_job(app, job.id, timeout=5)
    assert done.state is State.CANCELLED


async def test_a_sync_job_sees_the_cancel_and_is_marked_cancelled(app: App) -> None:
    started = threading.Event()

    @app.task
    def loop_until_cancelled(ctx: JobContext) -> str:
        started.set()
        ctx.cancelled.wait(10)
        return "saw cancel" if ctx.cancelled.is_set() else "timed out"

    job = await loop_until_cancelled.enqueue_async()
    async with running(app, lease_seconds=60):
        await asyncio.to_thread(started.wait, 10)
        await app.cancel_async(job.id)
        done = await wait_for_job(app, job.id, timeout=5)
    assert done.state is State.CANCELLED


async def test_a_schedule_with_seconds_fires_each_second_once_with_two_workers(
    app: App,
) -> None:
    @app.task
    async def tick() -> None:
        return None

    await app.schedule_async("every-second", tick, "* * * * * *")
    second = timedelta(seconds=1)
    async with running(app, worker_id="w1"), running(app, worker_id="w2"):

        async def three_in_a_row() -> list[Any] | None:
            # On a loaded machine both schedulers may wake over a second late;
            # the missed firing then collapses into the next one, as designed.
            # So wait for three firings a second apart, not for any three.
            jobs = await app.list_jobs_async(JobQuery(task=tick.name, limit=100))
            times = sorted({datetime.fromisoformat(j.meta["firing"]) for j in jobs})
            steps = [b - a == second for a, b in itertools.pairwise(times)]
            return jobs if any(x and y for x, y in itertools.pairwise(steps)) else None

        jobs = await eventually(three_in_a_row, timeout=30)
    firings = [j.meta["firing"] for j in jobs]
    assert len(firings) == len(set(firings)), "a firing was enqueued twice"
    times = sorted(datetime.fromisoformat(f) for f in firings)
    assert all(t.microsecond == 0 for t in times), "firings fall on whole seconds"
    assert all(b - a >= second for a, b in itertools.pairwise(times))
    stored = await app.get_schedule_async("every-second")
    assert stored.last_job_id in {j.id for j in jobs} | {None}


async def test_two_schedulers_across_a_dst_change_fire_each_time_once(app: App) -> None:
    """Europe/Berlin falls back at 03:00 CEST on 2026-10-25: a rule every 20 s and a
    daily 02:30 rule, driven by two schedulers whose clock walks across it."""

    @app.task
    async def tick() -> None:
        return None

    backend = await app.backend()
    start = datetime(2026, 10, 25, 0, 29, 0, tzinfo=UTC)  # 02:29 CEST
    await app.schedule_async("every-20s", tick, "*/20 * * * * *", timezone="Europe/Berlin")
    await app.schedule_async("daily", tick, "0 30 2 * * *", timezone="Europe/Berlin")
    for sid, cron in (("every-20s", "*/20 * * * * *"), ("daily", "0 30 2 * * *")):
        s = await app.get_schedule_async(sid)
        s.next_run_at = CronRule(cron, "Europe/Berlin").next_after(start)
        await backend.schedule_upsert(s)
    schedulers = [Scheduler(app, backend, 1) for _ in range(2)]
    now = start
    end = start + timedelta(hours=1, minutes=35)  # past both passes of 02:00-03:00
    while now < end:
        now += timedelta(seconds=10)
        for scheduler in schedulers:
            await scheduler.fire_due(now)
    jobs = await app.list_jobs_async(JobQuery(task=tick.name, limit=1000))
    by_schedule: dict[str, list[datetime]] = {}
    for job in jobs:
        by_schedule.setdefault(job.meta["schedule"], []).append(
            datetime.fromisoformat(job.meta["firing"])
        )
    daily = sorted(by_schedule["daily"])
    assert daily == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)], "02:30 fires once"
    every = sorted(by_schedule["every-20s"])
    assert len(every) == len(set(every))
    assert all(b - a == timedelta(seconds=20) for a, b in itertools.pairwise(every))
    assert every[0] == datetime(2026, 10, 25, 0, 29, 20, tzinfo=UTC)
    assert every[-1] >= datetime(2026, 10, 25, 2, 3, 0, tzinfo=UTC)  # 03:03 CET
    assert sum(s.fired for s in schedulers) == len(jobs)


async def test_a_scheduler_round_sleeps_until_the_next_firing_it_saw(app: App) -> None:
    """One round reads what is due within its interval: nothing due asks again
    after the whole interval; a firing ahead is slept up to, then fired."""

    @app.task
    async def tick() -> None:
        return None

    backend = await app.backend()
    scheduler = Scheduler(app, backend, 5.0)
    await scheduler.once()
    assert scheduler.interval == 5.0  # no schedule: one round per interval
    await app.schedule_async("daily", tick, "0 0 3 * * *")
    s = await app.get_schedule_async("daily")
    now = await backend.now()
    s.next_run_at = now + timedelta(seconds=2)
    await backend.schedule_upsert(s)
    await scheduler.once()
    assert scheduler.fired == 0  # not due yet
    assert 0 < scheduler.interval <= 2.0  # wakes at the firing, not a round later
    s.next_run_at = now - timedelta(seconds=1)  # now due
    await backend.schedule_upsert(s)
    await scheduler.once()
    assert scheduler.fired == 1
    assert scheduler.interval == 5.0  # the next firing is tomorrow's
    jobs = await app.list_jobs_async(JobQuery(task=tick.name))
    assert [j.meta["schedule"] for j in jobs] == ["daily"]


async def test_a_unique_schedule_skips_while_the_last_job_runs(app: App) -> None:
    release = asyncio.Event()
    runs = 0

    @app.task
    async def slow() -> None:
        nonlocal runs
        runs += 1
        await release.wait()

    await app.schedule_async("slow", slow, "* * * * * *", unique=True)
    async with running(app):

        async def skipped_once() -> bool:
            s = await app.get_schedule_async("slow")
            first = await app.list_jobs_async(JobQuery(task=slow.name))
            return (
                bool(first)
                and s.last_run_at is not None
                and s.last_job_id == first[-1].id
                and (s.last_run_at > datetime.fromisoformat(first[-1].meta["firing"]))
            )

        await eventually(skipped_once, timeout=10)
        assert len(await app.list_jobs_async(JobQuery(task=slow.name))) == 1
        release.set()
    assert runs == 1


@pytest.mark.timeout(300)
async def test_a_batch_continuation_runs_once_after_1000_jobs_on_two_workers(
    app: App,
) -> None:
    summaries: list[dict[str, Any]] = []

    @app.task
    async def part(n: int) -> int:
        return n

    @app.task
    async def report(label: str, ctx: JobContext) -> None:
        summaries.append({"label": label, **ctx.job.meta["batch"]})

    batch = await app.batch_async(
        [part.prepare(i) for i in range(1000)], then=[report.prepare("done")], name="big"
    )
    assert batch.total == 1000
    async with (
        running(app, worker_id="w1", concurrency=50),
        running(app, worker_id="w2", concurrency=50),
    ):

        async def reported() -> bool:
            return bool(summaries)

        # A bound, not a speed check: Azurite serves all 1000 jobs from one
        # Node.js process and takes minutes on a loaded 2-core machine.
        await eventually(reported, timeout=240)
        finished = await app.get_batch_async(batch.id)
        [cont_id] = finished.continuation_ids
        await wait_for_job(app, cont_id)
    assert len(summaries) == 1
    assert summaries[0]["label"] == "done"
    assert summaries[0]["counts"] == {"succeeded": 1000}
    assert finished.counts == {State.SUCCEEDED: 1000}
    conts = await app.list_jobs_async(JobQuery(task=report.name))
    assert [c.id for c in conts] == [cont_id]


async def test_cancelling_a_batch_cancels_waiting_and_aborts_running(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def hang(n: int) -> None:
        started.set()
        await asyncio.Event().wait()

    @app.task
    async def after() -> str:
        return "after"

    batch = await app.batch_async(
        [hang.prepare(i) for i in range(5)], then=[after.prepare()], tenant="acme"
    )
    async with running(app, concurrency=1, lease_seconds=60):
        await asyncio.wait_for(started.wait(), 10)
        await app.cancel_batch_async(batch.id, tenant="acme")

        async def settled() -> Any:
            b = await app.get_batch_async(batch.id)
            return b if b.finished_at is not None else None

        done = await eventually(settled, timeout=10)
        [cont] = done.continuation_ids
        assert (await wait_for_job(app, cont)).result == "after"
    assert done.counts == {State.CANCELLED: 5}
    assert (await app.get_job_async(cont)).tenant == "acme"


async def test_an_empty_batch_fires_its_continuation_at_once(app: App) -> None:
    @app.task
    async def after() -> str:
        return "after"

    batch = await app.batch_async([], then=[after.prepare()])
    assert batch.finished_at is not None
    [cont] = batch.continuation_ids
    await drain(app)
    assert (await app.get_job_async(cont)).meta["batch"]["total"] == 0


async def test_appending_to_a_finished_batch_is_refused(app: App) -> None:
    @app.task
    async def noop() -> None:
        return None

    batch = await app.batch_async([noop.prepare()])
    await app.batch_append_async(batch.id, [noop.prepare()])
    await drain(app)
    await app.settle_batch_async(batch.id)
    assert (await app.get_batch_async(batch.id)).counts == {State.SUCCEEDED: 2}
    with pytest.raises(BatchFinishedError):
        await app.batch_append_async(batch.id, [noop.prepare()])


class _PauseContinuation(Middleware):
    """Holds a settle between its read of the counts and its finish: the
    continuation's enqueue waits here until the test lets it go."""

    def __init__(self) -> None:
        self.task = ""
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def before_enqueue(self, job: NewJob) -> None:
        if job.task == self.task:
            self.reached.set()
            await self.go.wait()


async def test_an_append_racing_the_batch_finishing_waits_and_is_refused(
    backend_url: str,
) -> None:
    """The append comes while a settle has found every member ended and is
    firing the continuations: it waits for the settle, then is refused, so no
    job joins a batch whose continuations have run (docs/reliability.md)."""
    pause = _PauseContinuation()
    app = App(backend_url, middleware=[pause])

    @app.task
    async def part() -> None:
        return None

    @app.task
    async def report() -> None:
        return None

    pause.task = report.name
    try:
        batch = await app.batch_async([part.prepare()], then=[report.prepare()])
        [member] = await app.list_jobs_async(JobQuery(batch_id=batch.id))
        # The last member ends; cancelling it settles the batch at once.
        settling = asyncio.create_task(app.cancel_async(member.id))
        async with asyncio.timeout(30):
            await pause.reached.wait()
        appending = asyncio.create_task(app.batch_append_async(batch.id, [part.prepare()]))
        done, _ = await asyncio.wait({appending}, timeout=1.0)
        assert not done  # it waits while the continuations are being fired
        pause.go.set()
        await settling
        with pytest.raises(BatchFinishedError):
            await appending
        finished = await app.get_batch_async(batch.id)
        assert finished.total == 1
        assert len(finished.continuation_ids) == 1
    finally:
        await app.close_async()


async def test_a_burst_run_fires_and_runs_the_continuation(app: App) -> None:
    @app.task
    async def part(n: int) -> int:
        return n

    @app.task
    async def after(ctx: JobContext) -> int:
        return int((ctx.batch or {})["total"])

    batch = await app.batch_async([part.prepare(i) for i in range(3)], then=[after.prepare()])
    await drain(app)
    [cont] = (await app.get_batch_async(batch.id)).continuation_ids
    done = await app.get_job_async(cont)
    assert (done.state, done.result) == (State.SUCCEEDED, 3)


async def test_retention_purges_succeeded_and_cancelled_but_keeps_the_dead(app: App) -> None:
    @app.task(max_attempts=1)
    async def maybe(fail: bool) -> None:
        if fail:
            raise RuntimeError("dead on purpose")

    ok = await maybe.enqueue_async(False)
    doomed = await maybe.enqueue_async(True)
    dropped = await maybe.options(delay=60).enqueue_async(False)
    await app.cancel_async(dropped.id)
    await drain(app)
    backend = await app.backend()
    ended = [(await app.get_job_async(j.id)).finished_at for j in (ok, doomed, dropped)]
    finished = max(t for t in ended if t is not None)

    async def clock_past() -> bool:
        return await backend.now() > finished

    await eventually(clock_past)
    purge = Purge(backend, retention=0.001, every=60)
    assert await purge.purge() == 2
    assert (await app.get_job_async(doomed.id)).state is State.DEAD
    for gone in (ok, dropped):
        with pytest.raises(JobNotFoundError):
            await app.get_job_async(gone.id)
