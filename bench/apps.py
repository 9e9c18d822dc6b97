"""The app the benchmarks run: one no-op task, so that what is measured is
offload (enqueue, lease, record) and not the work, and one latency probe."""

from __future__ import annotations

import os
import time
from typing import Any

from offload import App, Task

TASK_NAME = "bench.noop"
PROBE_NAME = "bench.probe"
INT_TASK_NAME = "bench.int"
SYNC_TASK_NAME = "bench.sync_noop"


async def _noop() -> None:
    return None


def _sync_noop() -> None:
    """A plain ``def`` task: the worker runs it on a thread, so the hand-off to
    the thread and back is part of what is measured."""
    return None


async def _take_int(n: int) -> None:
    """One typed argument, so that validating it is part of what is measured,
    as it is for a user's task."""
    return None


async def _probe(sent: float) -> float:
    """The delay from the producer's clock reading just before it enqueued this
    job to the first line of the job running; the machine's one wall clock is
    read on both sides, so producer and worker processes compare directly."""
    return time.time() - sent


def bench_app(url: str) -> tuple[App, Task[Any]]:
    """A fresh app on ``url`` with the no-op task; one per backend measured."""
    app = App(url)
    app.task(name=PROBE_NAME, max_attempts=1)(_probe)
    app.task(name=INT_TASK_NAME, max_attempts=1)(_take_int)
    app.task(name=SYNC_TASK_NAME, max_attempts=1)(_sync_noop)
    return app, app.task(name=TASK_NAME, max_attempts=1)(_noop)


def probe_task(app: App) -> Task[Any]:
    return app.tasks[PROBE_NAME]


app, noop = bench_app(os.environ.get("OFFLOAD_BACKEND_URL", "memory://"))
