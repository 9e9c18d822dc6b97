"""``app.on_status_change`` on every backend: every transition of every job,
including a cancel from outside the worker, at-least-once, resumed from a
durable cursor after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from offload import App, EventKind, State
from offload.status import FileCursor, StatusChange
from offload.testing import drain, eventually
from offload.worker import Worker
from offload.worker.services.status import StatusWatch


async def test_callback_sees_every_transition_and_resumes_from_its_cursor(
    app: App, tmp_path: Path
) -> None:
    seen: list[tuple[str, EventKind, State | None]] = []

    def record(change: StatusChange) -> None:
        seen.append((change.job_id, change.kind, change.state))

    cursor = FileCursor(tmp_path / "status.cursor")
    follower = app.on_status_change(record, cursor=cursor)

    @app.task(max_attempts=1)
    async def work(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    ok, bad, dropped = [await work.enqueue_async(f) for f in (False, True, False)]
    await app.cancel_async(dropped.id)  # made outside any worker
    await drain(app)
    backend = await app.backend()
    await StatusWatch(backend, follower).once()
    assert [(k, s) for j, k, s in seen if j == ok.id] == [
        (EventKind.ENQUEUED, State.QUEUED), (EventKind.STARTED, State.RUNNING),
        (EventKind.SUCCEEDED, State.SUCCEEDED),
    ]  # fmt: skip
    assert (bad.id, EventKind.DEAD, State.DEAD) in seen
    assert (dropped.id, EventKind.CANCELLED, State.CANCELLED) in seen

    # A restarted follower with the same cursor file sees only what is new.
    before = len(seen)
    late = await work.enqueue_async(False)
    restarted = app.on_status_change(record, cursor=FileCursor(tmp_path / "status.cursor"))
    await StatusWatch(backend, restarted).once()
    assert seen[before:] == [(late.id, EventKind.ENQUEUED, State.QUEUED)]


async def test_a_failing_callback_gets_the_same_changes_again(app: App) -> None:
    calls: list[str] = []

    def flaky(change: StatusChange) -> None:
        calls.append(change.job_id)
        if len(calls) == 1:
            raise RuntimeError("callback down")

    follower = app.on_status_change(flaky)

    @app.task
    def noop() -> None: ...

    job = await noop.enqueue_async()
    watch = StatusWatch(await app.backend(), follower)
    with pytest.raises(RuntimeError, match="callback down"):
        await watch.once()
    await watch.once()
    assert calls == [job.id, job.id]  # at-least-once: not skipped after a failure


async def test_a_running_worker_delivers_changes(app: App) -> None:
    got = asyncio.Event()

    async def record(change: StatusChange) -> None:
        if change.kind is EventKind.SUCCEEDED:
            got.set()

    app.on_status_change(record, interval=0.05)

    @app.task
    async def noop() -> None: ...

    worker = Worker(app, handle_signals=False, poll_interval=0.05)
    running = asyncio.create_task(worker.run())
    try:
        await noop.enqueue_async()
        await eventually(lambda: _is_set(got))
    finally:
        worker.stop()
        await running


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()
