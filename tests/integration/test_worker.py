"""The worker against every backend: execution, retries, dead letter, timeouts,
bad input, queue order, concurrency, middleware, cancellation and shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel
from uuid_utils import uuid7

from offload import App, EventKind, JobContext, Middleware, NewJob, State
from offload.job import Job, Outcome
from offload.testing import drain, eventually, wait_for_job
from offload.worker import Worker


async def test_runs_async_and_sync_tasks_and_stores_typed_results(app: App) -> None:
    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    @app.task
    def shout(word: str, ctx: JobContext) -> dict[str, Any]:
        return {"word": word.upper(), "attempt": ctx.attempt}

    j1 = await add.enqueue_async(2, 3)
    j2 = await shout.enqueue_async(word="hi")
    worker = await drain(app)
    assert worker.processed == 2
    done1, done2 = await app.get_job_async(j1.id), await app.get_job_async(j2.id)
    assert (done1.state, done1.result, add.result_of(done1)) == (State.SUCCEEDED, 5, 5)
    assert done2.result == {"word": "HI", "attempt": 1}
    kinds = [e.kind for e in await app.events_async(j1.id)]
    assert kinds == [EventKind.ENQUEUED, EventKind.STARTED, EventKind.SUCCEEDED]


async def test_command_handler_runs_with_typed_command(app: App) -> None:
    class Resize(BaseModel):
        path: str
        width: int

    seen: list[Resize] = []

    @app.handler(Resize)
    async def handle(cmd: Resize) -> str:
        seen.append(cmd)
        return f"{cmd.path}@{cmd.width}"

    job = await app.dispatch_async(Resize(path="a.png", width=64))
    await drain(app)
    assert seen == [Resize(path="a.png", width=64)]
    assert (await app.get_job_async(job.id)).result == "a.png@64"


async def test_failure_retries_then_succeeds(app: App) -> None:
    @app.task(retry=[0.01], max_attempts=3)
    def flaky(ctx: JobContext) -> str:
        if ctx.attempt < 3:
            raise ValueError(f"attempt {ctx.attempt} fails")
        return "ok"

    job = await flaky.enqueue_async()
    # burst may stop while the retry is scheduled; drain again until it ends
    done = await _run_until_ended(app, job.id)
    assert (done.state, done.attempts, done.result) == (State.SUCCEEDED, 3, "ok")
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert kinds.count(EventKind.FAILED) == 2
    assert kinds.count(EventKind.RETRY_SCHEDULED) == 2


async def test_exhausted_attempts_go_to_dead_letter_with_error(app: App) -> None:
    @app.task(retry=[0.0], max_attempts=2)
    def broken() -> None:
        raise RuntimeError("always broken")

    job = await broken.enqueue_async()
    done = await _run_until_ended(app, job.id)
    assert done.state is State.DEAD
    assert done.attempts == 2
    assert done.error is not None
    assert done.error.type.endswith("RuntimeError")
    assert done.error.message == "always broken"
    assert "raise RuntimeError" in (done.error.traceback or "")
    latest = await (await app.backend()).event_latest(job.id)
    assert latest is not None
    assert latest.kind is EventKind.DEAD


async def test_timeout_fails_the_attempt(app: App) -> None:
    @app.task(timeout=0.05, max_attempts=1)
    async def slow() -> None:
        await asyncio.Event().wait()

    job = await slow.enqueue_async()
    done = await _run_until_ended(app, job.id)
    assert done.state is State.DEAD
    assert done.error is not None
    assert "timed out after 0.05s" in done.error.message


@pytest.mark.parametrize(
    ("task", "payload", "reason"),
    [
        ("no.such.task", b'{"x": 1}', "UnknownTaskError"),
        ("tests.known", b"\xff\xfe not json", "PayloadError"),
        ("tests.known", b'{"x": "not an int"}', "PayloadError"),
    ],
)
async def test_unrunnable_jobs_go_dead_with_the_reason(
    app: App, task: str, payload: bytes, reason: str
) -> None:
    @app.task(name="tests.known")
    def known(x: int) -> int:
        return x

    backend = await app.backend()
    [job] = await backend.job_enqueue_many([NewJob(str(uuid7()), task, payload)])
    done = await _run_until_ended(app, job.id)
    assert done.state is State.DEAD
    assert done.attempts == 1
    assert done.error is not None
    assert done.error.type == reason
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert EventKind.FAILED not in kinds  # it never ran
    assert kinds[-1] is EventKind.DEAD


async def test_first_non_empty_queue_wins(app: App) -> None:
    order: list[str] = []

    @app.task
    def record(label: str) -> None:
        order.append(label)

    for i in range(3):
        await record.options(queue="low").enqueue_async(f"low{i}")
    for i in range(3):
        await record.options(queue="high").enqueue_async(f"high{i}")
    await drain(app, ["high", "low"], concurrency=1)
    assert order == ["high0", "high1", "high2", "low0", "low1", "low2"]


async def test_concurrency_is_bounded(app: App) -> None:
    active = 0
    peak = 0
    # Each job waits until three run at once: the worker must reach its bound,
    # and a fourth job started beside them would show in the peak.
    together = asyncio.Barrier(3)

    @app.task
    async def hold() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.wait_for(together.wait(), 10)
        active -= 1

    await hold.enqueue_many_async([() for _ in range(12)])
    await drain(app, concurrency=3)
    assert peak == 3


async def test_burst_leaves_later_jobs_scheduled(app: App) -> None:
    @app.task
    def later() -> None:
        raise AssertionError("must not run before its time")

    job = await later.options(delay=3600).enqueue_async()
    worker = await drain(app)
    assert worker.processed == 0
    assert (await app.get_job_async(job.id)).state is State.SCHEDULED


async def test_progress_and_checkpoint_are_stored_while_running(app: App) -> None:
    release = asyncio.Event()

    @app.task
    async def long(ctx: JobContext) -> str:
        await ctx.save_async({"page": 7}, progress=0.5, message="half way")
        await release.wait()
        return "done"

    job = await long.enqueue_async()
    worker = Worker(app, handle_signals=False, poll_interval=0.05)
    run = asyncio.create_task(worker.run())

    async def halfway() -> Job | None:
        j = await app.get_job_async(job.id)
        return j if j.progress == 0.5 else None

    seen = await eventually(halfway)
    assert (seen.checkpoint, seen.progress_message) == ({"page": 7}, "half way")
    release.set()
    done = await wait_for_job(app, job.id)
    worker.stop()
    await run
    assert done.state is State.SUCCEEDED
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert EventKind.PROGRESS in kinds


async def test_cancel_running_async_job(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    job = await forever.enqueue_async()
    worker = Worker(app, handle_signals=False, lease_seconds=30, poll_interval=0.05)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    await app.cancel_async(job.id)
    done = await wait_for_job(app, job.id, timeout=10)
    worker.stop()
    await run
    assert done.state is State.CANCELLED
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert kinds[-2:] == [EventKind.CANCEL_REQUESTED, EventKind.CANCELLED]


async def test_shutdown_hands_unfinished_job_back_with_checkpoint(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def resumable(ctx: JobContext) -> int:
        page = (ctx.checkpoint or {}).get("page", 0)
        if page == 0:
            await ctx.save_async({"page": 3})
            started.set()
            await asyncio.Event().wait()
        return int(page)

    job = await resumable.enqueue_async()
    worker = Worker(app, handle_signals=False, grace_period=0.1, poll_interval=0.05)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await run
    back = await app.get_job_async(job.id)
    assert (back.state, back.attempts, back.checkpoint) == (State.QUEUED, 0, {"page": 3})
    await drain(app)
    done = await app.get_job_async(job.id)
    assert (done.state, done.result, done.attempts) == (State.SUCCEEDED, 3, 1)


async def test_shutdown_waits_for_jobs_within_grace(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def short() -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished"

    job = await short.enqueue_async()
    worker = Worker(app, handle_signals=False, grace_period=10, poll_interval=0.05)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    worker.stop()
    await run
    assert (await app.get_job_async(job.id)).state is State.SUCCEEDED


async def test_middleware_hooks_run_around_execution(app: App) -> None:
    calls: list[str] = []

    class Trace(Middleware):
        def before_execute(self, job: Job, ctx: JobContext) -> None:
            calls.append(f"before:{job.task}")

        async def after_execute(self, job: Job, outcome: Outcome) -> None:
            calls.append(f"after:{type(outcome).__name__}")

        def on_error(self, job: Job, error: BaseException) -> None:
            calls.append(f"error:{error}")

    traced = App(app.backend_url, middleware=[Trace()])
    traced._prototype = app._prototype  # same storage as the fixture's app

    @traced.task(name="t.fails", max_attempts=1)
    def fails() -> None:
        raise ValueError("nope")

    await fails.enqueue_async()
    await drain(traced)
    await traced.close_async()
    assert calls == ["before:t.fails", "error:nope", "after:Failed"]


async def _run_until_ended(app: App, job_id: str) -> Job:
    async def ended() -> Job | None:
        await drain(app)
        job = await app.get_job_async(job_id)
        return job if job.ended else None

    return await eventually(ended, timeout=20)


async def test_a_typed_error_is_stored_and_read_back_typed(app: App) -> None:
    from offload import TaskFailure

    class QuotaExceeded(BaseModel):
        limit: int
        used: int

    @app.task(error=QuotaExceeded, max_attempts=5, retry=[0.01])
    async def spend(n: int) -> None:
        raise TaskFailure(QuotaExceeded(limit=5, used=n), retry=False)

    job = await spend.enqueue_async(7)
    await drain(app)
    dead = await app.get_job_async(job.id)
    assert (dead.state, dead.attempts) == (State.DEAD, 1), "retry=False: dead at once"
    assert dead.error is not None
    assert dead.error.type.endswith("QuotaExceeded")
    assert spend.error_of(dead) == QuotaExceeded(limit=5, used=7)


async def test_a_failure_is_logged_with_its_type_and_not_its_message(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(max_attempts=1)
    async def leaky(secret: str) -> None:
        raise PermissionError(f"token {secret} refused")

    await leaky.enqueue_async("s3cr3t")
    with caplog.at_level("INFO", logger="offload.worker"):
        await drain(app)
    failed = [r.getMessage() for r in caplog.records if "failed with" in r.getMessage()]
    assert len(failed) == 1
    assert "builtins.PermissionError; dead" in failed[0]
    assert "s3cr3t" not in caplog.text


async def test_a_job_an_idle_worker_is_woken_for_starts_before_its_next_lease(app: App) -> None:
    """The fetch loop leases again right after a wake-up; that call's client-side
    work, which runs before its first suspension, once ran before the woken
    job's first line and delayed every job an idle worker was woken for."""
    steps: list[str] = []
    backend = await app.backend()
    lease, lease_on_wake = backend.job_lease, backend.job_lease_on_wake

    async def leasing(*args: Any, **kwargs: Any) -> list[Job]:
        steps.append("lease")
        return await lease(*args, **kwargs)

    async def waking(*args: Any, **kwargs: Any) -> list[Job]:
        steps.append("wait")
        jobs = await lease_on_wake(*args, **kwargs)
        if jobs:
            steps.append("woken")
        return jobs

    backend.job_lease = leasing  # type: ignore[method-assign]
    backend.job_lease_on_wake = waking  # type: ignore[method-assign]

    @app.task
    async def probe() -> None:
        steps.append("run")

    worker = Worker(app, handle_signals=False, poll_interval=5.0)
    run = asyncio.create_task(worker.run())

    async def waiting() -> bool:
        return "wait" in steps

    await eventually(waiting)
    job = await probe.enqueue_async()
    done = await wait_for_job(app, job.id)
    worker.stop()
    await run
    assert done.state is State.SUCCEEDED
    woken = steps.index("woken")
    assert steps[woken + 1] == "run", steps[woken:]
