"""The app the benchmarks run: one no-op task, so that what is measured is
offload (enqueue, lease, record) and not the work."""

from __future__ import annotations

import os
from typing import Any

from offload import App, Task

TASK_NAME = "bench.noop"


async def _noop() -> None:
    return None


def bench_app(url: str) -> tuple[App, Task[Any]]:
    """A fresh app on ``url`` with the no-op task; one per backend measured."""
    app = App(url)
    return app, app.task(name=TASK_NAME, max_attempts=1)(_noop)


app, noop = bench_app(os.environ.get("OFFLOAD_BACKEND_URL", "memory://"))
