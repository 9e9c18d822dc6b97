"""Middleware: enqueue hooks may change or observe jobs; execution hooks never
fail work."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from offload import App, Job, JobContext, Middleware, NewJob, State
from offload.job import JobQuery, Succeeded
from offload.middleware import MiddlewareChain


class Tag(Middleware):
    """A sync before_enqueue that changes the job."""

    def before_enqueue(self, job: NewJob) -> NewJob:
        return dataclasses.replace(job, meta={**job.meta, "trace": "t-1"}, priority=5)


class AsyncQueue(Middleware):
    """An async before_enqueue that changes the job after the one before it."""

    async def before_enqueue(self, job: NewJob) -> NewJob:
        return dataclasses.replace(job, queue=f"{job.queue}-routed")


class Observe(Middleware):
    def __init__(self) -> None:
        self.seen: list[Job] = []

    async def after_enqueue(self, job: Job) -> None:
        self.seen.append(job)


class Noop(Middleware):
    def before_enqueue(self, job: NewJob) -> None:
        return None


class Broken(Middleware):
    def before_execute(self, job: Job, ctx: JobContext) -> None:
        raise RuntimeError("metrics exporter down")

    async def after_execute(self, job: Job, outcome: object) -> None:
        raise RuntimeError("tracer down")


class Refuse(Middleware):
    def before_enqueue(self, job: NewJob) -> NewJob:
        raise PermissionError("tenant over quota")


def _app(*middleware: Middleware) -> App:
    return App("memory://", middleware=middleware)


async def test_before_enqueue_hooks_change_the_job_in_order() -> None:
    observe = Observe()
    app = _app(Tag(), Noop(), AsyncQueue(), observe)

    @app.task
    def ping() -> None:
        return None

    job = await ping.enqueue_async()
    stored = await app.get_job_async(job.id)
    assert (stored.meta, stored.priority, stored.queue) == ({"trace": "t-1"}, 5, "default-routed")
    await app.close_async()


async def test_after_enqueue_sees_the_stored_job() -> None:
    observe = Observe()
    app = _app(observe)

    @app.task
    def ping(n: int) -> None:
        return None

    jobs = await ping.enqueue_many_async([(1,), (2,)])
    assert [j.id for j in observe.seen] == [j.id for j in jobs]
    assert all(j.state is State.QUEUED for j in observe.seen)
    assert [j.arguments for j in observe.seen] == [{"n": 1}, {"n": 2}]
    await app.close_async()


async def test_a_raising_enqueue_hook_stops_the_enqueue() -> None:
    app = _app(Refuse())

    @app.task
    def ping() -> None:
        return None

    with pytest.raises(PermissionError, match="quota"):
        await ping.enqueue_async()
    assert await app.list_jobs_async(JobQuery()) == []
    await app.close_async()


async def test_a_failing_execution_hook_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = MiddlewareChain([Broken()])
    job = _job()
    with caplog.at_level(logging.ERROR, logger="offload.middleware"):
        await chain.run("before_execute", job, JobContext(job))
        await chain.run("after_execute", job, Succeeded(None))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "middleware hook before_execute failed",
        "middleware hook after_execute failed",
    ]
    assert "metrics exporter down" in (caplog.records[0].exc_text or "")


async def test_hooks_after_a_failing_one_still_run() -> None:
    calls: list[str] = []

    class Record(Middleware):
        def before_execute(self, job: Job, ctx: JobContext) -> None:
            calls.append(job.id)

    chain = MiddlewareChain([Broken(), Record()])
    job = _job()
    await chain.run("before_execute", job, JobContext(job))
    assert calls == [job.id]


def test_only_overridden_hooks_are_registered() -> None:
    chain = MiddlewareChain([Tag(), Observe()])
    assert chain.has("before_enqueue")
    assert chain.has("after_enqueue")
    assert not chain.has("before_execute")
    assert not MiddlewareChain([]).has("before_enqueue")


def _job() -> Job:
    now = datetime.now(UTC)
    return Job(
        id="j-1", task="t", queue="default", tenant="default", state=State.RUNNING,
        payload=b"{}", priority=0, attempts=1, max_attempts=3, created_at=now, run_at=now,
    )  # fmt: skip


class WholeCall(Middleware):
    """Sees each enqueue call once, whatever its size, and its failure."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def before_enqueue_many(self, jobs: list[NewJob]) -> list[NewJob]:
        self.calls.append(("before", len(jobs)))
        return [dataclasses.replace(j, meta={**j.meta, "call": len(jobs)}) for j in jobs]

    async def after_enqueue_many(self, jobs: list[Job]) -> None:
        self.calls.append(("after", len(jobs)))

    def on_enqueue_error(self, jobs: list[NewJob], error: BaseException) -> None:
        self.calls.append((type(error).__name__, len(jobs)))


async def test_whole_call_hooks_see_a_bulk_enqueue_once() -> None:
    whole = WholeCall()
    app = _app(whole)

    @app.task
    def ping(n: int) -> None:
        return None

    jobs = await ping.enqueue_many_async([(1,), (2,), (3,)])
    await ping.enqueue_async(4)
    assert whole.calls == [("before", 3), ("after", 3), ("before", 1), ("after", 1)]
    assert (await app.get_job_async(jobs[0].id)).meta == {"call": 3}
    await app.close_async()


async def test_a_failed_store_reaches_on_enqueue_error_and_the_caller() -> None:
    whole = WholeCall()
    app = _app(whole)

    @app.task
    def ping() -> None:
        return None

    @app.task(name="big")
    def big() -> None:
        return None

    backend = await app.backend()

    async def refuse(jobs: object) -> list[Job]:
        raise ConnectionError("store down")

    backend.job_enqueue_many = refuse  # type: ignore[method-assign]
    with pytest.raises(ConnectionError, match="store down"):
        await ping.enqueue_async()
    assert whole.calls == [("before", 1), ("ConnectionError", 1)]
