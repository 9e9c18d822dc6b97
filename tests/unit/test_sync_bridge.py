"""Sync twins: every public ``*_async`` method has a sync one with the same
parameters, made one way (through ``offload._sync``; enqueues through
``App._store_new_sync``, which falls back to it), and the bridge refuses, with
offload's own error, the calls that would deadlock."""

from __future__ import annotations

import asyncio
import inspect
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from offload import App, BoundTask, Job, JobContext, JobContextOf, State, Task, UsageError
from offload._sync import run_on, run_or_schedule, run_sync
from offload.job import JobQuery

TWINNED = [App, Task, BoundTask, JobContextOf]  # JobContext inherits its methods


def _async_names(cls: type) -> list[str]:
    return [
        name
        for name, member in vars(cls).items()
        if name.endswith("_async") and not name.startswith("_") and callable(member)
    ]


@pytest.mark.parametrize("cls", TWINNED, ids=lambda c: c.__name__)
def test_every_async_method_has_a_sync_twin_with_its_parameters(cls: type) -> None:
    names = _async_names(cls)
    assert names, f"{cls.__name__} has no *_async methods to twin"
    for name in names:
        twin = getattr(cls, name.removesuffix("_async"), None)
        assert twin is not None, f"{cls.__name__}.{name} has no sync twin"
        assert not inspect.iscoroutinefunction(twin), f"{cls.__name__}.{twin.__name__} is async"
        async_sig = inspect.signature(getattr(cls, name))
        assert inspect.signature(twin).parameters == async_sig.parameters, name
        # One way: through the bridge (JobContext's through its worker's loop),
        # or for an enqueue the caller's own thread where the backend allows it.
        source = inspect.getsource(twin)
        ways = ("run_sync(", "self._call(", "_store_new_sync(")
        assert any(way in source for way in ways), twin.__qualname__


def _job() -> Job:
    now = datetime.now(UTC)
    return Job(id="j", task="t", queue="default", tenant="default", state=State.RUNNING,
               payload=b"{}", priority=0, attempts=1, max_attempts=3, created_at=now,
               run_at=now)  # fmt: skip


def test_sync_twins_read_what_was_stored() -> None:
    app = App("memory://")

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    job = add.enqueue(1, 2)
    assert app.get_job(job.id).state is State.QUEUED
    assert [j.id for j in app.list_jobs(JobQuery(limit=10))] == [job.id]
    assert [e.job_id for e in app.events(job.id)] == [job.id]
    assert app.pauses() == []
    app.close()


def test_a_sync_call_on_the_bridge_loop_is_a_usage_error() -> None:
    async def inner() -> None:
        run_sync(asyncio.sleep(0))

    with pytest.raises(UsageError, match="use \\*_async"):
        run_sync(inner())


async def test_waiting_on_ones_own_loop_is_refused_not_deadlocked() -> None:
    coro = asyncio.sleep(0)
    with pytest.raises(UsageError, match="waits for"):
        run_on(asyncio.get_running_loop(), coro)


async def test_run_or_schedule_waits_from_a_thread_and_schedules_on_the_loop() -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    written = asyncio.Event()

    async def write(tag: str) -> None:
        seen.append(tag)
        written.set()

    await asyncio.to_thread(run_or_schedule, loop, write("thread"))
    assert seen == ["thread"]  # waited for: done before the thread returned
    written.clear()
    run_or_schedule(loop, write("loop"))
    await asyncio.wait_for(written.wait(), timeout=5)
    assert seen == ["thread", "loop"]


def test_job_context_writes_need_a_worker() -> None:
    ctx = JobContext(_job())
    with pytest.raises(UsageError, match="needs a running worker"):
        ctx.save({"step": 1})
    with pytest.raises(RuntimeError):  # still what it was before the error tree
        ctx.progress(0.5)


def test_job_context_sync_save_from_a_worker_thread_reaches_the_reporter() -> None:
    saved: list[Any] = []

    class Reporter:
        async def save(self, job: Job, checkpoint: bytes | None, progress: float | None,
                       message: str | None) -> None:  # fmt: skip
            saved.append((checkpoint, progress, message))

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        ctx = JobContext(_job(), Reporter(), lambda value: repr(value).encode())
        ctx._loop = loop
        ctx.save({"step": 1}, 0.5, "half")
        assert saved == [(b"{'step': 1}", 0.5, "half")]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_use_backend_after_use_is_a_usage_error() -> None:
    app = App("memory://")
    app.pauses()
    with pytest.raises(UsageError, match="before the app is used"):
        app.use_backend("memory://")
    app.close()
