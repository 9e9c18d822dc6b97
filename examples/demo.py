"""The demo app behind ``offload demo`` and ``scripts/demo``.

Each task shows one part of offload within seconds: a fast task, a slow async
task reporting progress, a flaky task that succeeds on its third attempt, a task
that always fails and lands in the dead letter, a typed command handler, a batch
of thumbnails whose continuation reports on it, and a schedule firing every ten
seconds.
Task names are given explicitly so that they do not depend on how this module is
imported (``examples.demo``, ``demo`` or ``__main__``).

    python examples/demo.py 20                  # enqueue 20 demo jobs
    offload worker examples.demo:app --queues high,default,low
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from pydantic import BaseModel

from offload import App, Job, JobContext, Task

app = App(os.environ.get("OFFLOAD_BACKEND_URL", "sqlite:///offload-demo.db"))

QUEUES = ["high", "default", "low"]


@app.task(name="demo.fast")
def fast(n: int) -> int:
    return n * n


@app.task(name="demo.slow", queue="low", timeout=60)
async def slow(ctx: JobContext, seconds: float) -> str:
    steps = 5
    for step in range(1, steps + 1):
        await asyncio.sleep(seconds / steps)
        await ctx.progress_async(step / steps, f"step {step} of {steps}")
    return f"slept {seconds}s"


@app.task(name="demo.flaky", max_attempts=3, retry=[1.0, 2.0])
def flaky(ctx: JobContext) -> str:
    if ctx.attempt < 3:
        raise ConnectionError(f"upstream unavailable (attempt {ctx.attempt})")
    return f"succeeded on attempt {ctx.attempt}"


@app.task(name="demo.always_fails", max_attempts=3, retry=[0.5, 1.0])
def always_fails(reason: str) -> None:
    raise RuntimeError(reason)


class ResizeImage(BaseModel):
    """A command: the job's payload is this typed object, validated on enqueue."""

    path: str
    width: int
    height: int


@app.handler(ResizeImage, name="demo.resize_image", queue="high")
async def resize_image(command: ResizeImage) -> dict[str, Any]:
    await asyncio.sleep(0.2)
    return {"path": command.path, "size": [command.width, command.height]}


@app.task(name="demo.thumbnail", concurrency_limit=4)
async def thumbnail(index: int) -> str:
    await asyncio.sleep(0.05)
    return f"thumb-{index:03d}.jpg"


@app.task(name="demo.batch_report")
def batch_report(ctx: JobContext, label: str) -> dict[str, Any]:
    """A batch continuation: runs once, after every thumbnail has ended."""
    return {"label": label, **(ctx.batch or {})}


@app.task(name="demo.tick")
def tick() -> str:
    return "tick"


def _plan(n: int, start: int) -> list[tuple[Task[Any], list[Any]]]:
    """Out of every 20 jobs: 10 fast, 5 commands, 2 slow, 2 flaky, 1 doomed."""
    pattern = ["fast", "resize", "fast", "fast", "slow", "fast", "resize", "flaky", "fast",
               "resize", "fast", "always_fails", "fast", "resize", "slow", "fast", "resize",
               "flaky", "fast", "fast"]  # fmt: skip
    items: dict[str, list[Any]] = {name: [] for name in set(pattern)}
    for i in range(start, start + n):
        kind = pattern[i % len(pattern)]
        items[kind].append(_item(kind, i))
    tasks: dict[str, Task[Any]] = {"fast": fast, "resize": resize_image, "slow": slow,
                                   "flaky": flaky, "always_fails": always_fails}  # fmt: skip
    return [(tasks[kind], batch) for kind, batch in sorted(items.items()) if batch]


def _item(kind: str, i: int) -> Any:
    if kind == "fast":
        return (i,)
    if kind == "resize":
        return ResizeImage(path=f"photos/{i:04d}.jpg", width=640, height=480)
    if kind == "slow":
        return {"seconds": 3.0 + i % 3}
    if kind == "always_fails":
        return {"reason": f"demo job {i} fails on purpose"}
    return ()


async def seed_async(n: int = 40, start: int = 0) -> list[Job]:
    """Enqueue ``n`` demo jobs, one round trip per task; ``start`` continues the
    mix where an earlier call left it."""
    jobs: list[Job] = []
    for task, items in _plan(n, start):
        jobs += await task.enqueue_many_async(items)
    await orchestrate_async(start)
    return jobs


async def orchestrate_async(start: int = 0) -> None:
    """A batch of thumbnails with a continuation, and (once) a schedule."""
    await app.batch_async(
        [thumbnail.prepare(start + i) for i in range(12)],
        then=[batch_report.prepare(f"thumbnails from {start}")],
        name=f"thumbnails-{start}",
    )
    await app.schedule_async("demo-tick", tick, "*/10 * * * * *")


def seed(n: int = 40, start: int = 0) -> list[Job]:
    jobs: list[Job] = []
    for task, items in _plan(n, start):
        jobs += task.enqueue_many(items)
    app.batch(
        [thumbnail.prepare(start + i) for i in range(12)],
        then=[batch_report.prepare(f"thumbnails from {start}")],
        name=f"thumbnails-{start}",
    )
    app.schedule("demo-tick", tick, "*/10 * * * * *")
    return jobs


if __name__ == "__main__":
    for job in seed(int(sys.argv[1]) if len(sys.argv) > 1 else 40):
        print(job.id, job.task, job.state)
