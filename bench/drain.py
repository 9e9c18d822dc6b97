"""One worker process draining a bench queue; spawned by ``throughput.py``.

It prints one JSON line: how long the worker ran and how many jobs of the queue
succeeded, counted through ``job_counts``. A backend that cannot be shared
between processes (``memory://``) is seeded here first, outside the timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import SYNC_TASK_NAME, bench_app

from offload.lifecycle import State
from offload.worker import Worker

CHUNK = 1000


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--seed", type=int, default=0, help="enqueue this many jobs first")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--fetch-batch", type=int, default=None)
    parser.add_argument("--sync", action="store_true", help="a plain def task (run on threads)")
    return parser.parse_args()


async def seed(task: Any, queue: str, n: int) -> None:
    bound = task.options(queue=queue)
    for start in range(0, n, CHUNK):
        await bound.enqueue_many_async([()] * min(CHUNK, n - start))


async def main(args: argparse.Namespace) -> dict[str, float]:
    app, task = bench_app(args.backend)
    if args.sync:
        task = app.tasks[SYNC_TASK_NAME]
    await seed(task, args.queue, args.seed)
    worker = Worker(
        app, [args.queue], concurrency=args.concurrency, fetch_batch=args.fetch_batch,
        burst=True, handle_signals=False, poll_interval=0.05,
    )  # fmt: skip
    began = time.perf_counter()
    await worker.run()
    seconds = time.perf_counter() - began
    counts = await (await app.backend()).job_counts()
    await app.close_async()
    return {"seconds": seconds, "succeeded": counts.get((args.queue, State.SUCCEEDED), 0)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse()))))
