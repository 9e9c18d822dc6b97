"""Workflows: how long a 10,000-job graph takes to store in one call, and how
long a dependent waits between its parent's end and its own start.

    .venv/bin/python bench/workflows.py --backend memory:// \
        --backend sqlite:////tmp/offload-wf.db --backend redis://127.0.0.1:6379/7

* enqueue: ``app.workflow_async(chord([...9,999 jobs...], join))`` — one
  ``batch_create`` and one ``job_enqueue_many``; the seconds it takes, and jobs/s.
* hand-off: a chain of ``--chain`` steps run by one in-process worker; each step
  returns the wall clock as it ends and the next reads it from ``ctx.parents``
  at its start; p50 / p95 / max of (start - parent's end) in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from offload import App, JobContext, State, chain, chord
from offload.testing import wait_for_job
from offload.worker import Worker


def build(url: str) -> App:
    app = App(url)

    @app.task(name="bench.leaf")
    async def leaf() -> None:
        return None

    @app.task(name="bench.link")
    async def link(ctx: JobContext) -> list[float]:
        started = time.time()
        waited = [started - float(p.result[1]) for p in ctx.parents.values()]
        return [waited[0] if waited else -1.0, time.time()]

    return app


async def enqueue_big(app: App, size: int) -> float:
    leaf, link = app.tasks["bench.leaf"], app.tasks["bench.link"]
    queue = f"bench-{uuid.uuid4().hex[:8]}"  # never run: only storing is timed
    head = [leaf.options(queue=queue).prepare() for _ in range(size - 1)]
    began = time.perf_counter()
    flow = await app.workflow_async(chord(head, link.options(queue=queue).prepare()))
    took = time.perf_counter() - began
    assert len(flow.jobs) == size
    await app.cancel_workflow_async(flow.id)
    return took


async def hand_off(app: App, steps: int) -> list[float]:
    link = app.tasks["bench.link"]
    flow = await app.workflow_async(chain(*(link.prepare() for _ in range(steps))))
    worker = Worker(app, ["default"], handle_signals=False, poll_interval=0.05)
    running = asyncio.create_task(worker.run())
    try:
        last = list(flow.jobs.values())[-1]
        done = await wait_for_job(app, last.id, timeout=120)
        assert done.state is State.SUCCEEDED
    finally:
        worker.stop(force=True)
        await running
    final = await app.get_workflow_async(flow.id)
    return [float(j.result[0]) * 1000 for j in list(final.jobs.values())[1:]]


async def one(url: str, size: int, steps: int) -> None:
    app = build(url)
    try:
        took = await enqueue_big(app, size)
        waits = sorted(await hand_off(app, steps))
    finally:
        await app.close_async()
    p95 = waits[int(len(waits) * 0.95) - 1]
    print(f"{url:55} enqueue {size} in {took:6.2f}s ({size / took:8.0f} jobs/s)   "
          f"hand-off p50 {statistics.median(waits):6.1f} ms  p95 {p95:6.1f} ms  "
          f"max {waits[-1]:6.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=50)
    args = parser.parse_args()
    for url in args.backend or ["memory://"]:
        asyncio.run(one(url, args.size, args.chain))


if __name__ == "__main__":
    main()
