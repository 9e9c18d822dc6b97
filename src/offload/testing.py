"""Helpers for testing code that uses offload: run a worker until the queues are
empty, or wait (bounded) for a job to reach a state, instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

from offload.app import App
from offload.job import Job
from offload.lifecycle import ENDED, State
from offload.worker import Worker

T = TypeVar("T")


async def drain(app: App, queues: Sequence[str] = ("default",), **options: Any) -> Worker:
    """Run a worker in this event loop until no job of ``queues`` is queued or
    running (jobs scheduled for later stay); returns it for its counters."""
    options.setdefault("handle_signals", False)
    options.setdefault("poll_interval", 0.05)
    worker = Worker(app, queues, burst=True, **options)
    await worker.run()
    return worker


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0, interval: float = 0.02
) -> T:
    """Poll ``check`` until it returns something truthy, failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def wait_for_job(
    app: App, job_id: str, states: Collection[State] = ENDED, *, timeout: float = 10.0
) -> Job:
    """The job once it is in one of ``states`` (default: any ended state)."""

    async def check() -> Job | None:
        job = await app.get_job_async(job_id)
        return job if job.state in states else None

    return await eventually(check, timeout=timeout)
