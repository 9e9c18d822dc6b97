"""What one enqueue costs in CPU, as against how many run per second.

    python bench/enqueue_cost.py --backend redis://127.0.0.1:6390/0 \\
        --backend 'postgresql://postgres@127.0.0.1/test?schema=offload_cost' \\
        --backend sqlite:////tmp/offload-cost.db [--jobs 500] [--rounds 8] \\
        [--api async --api sync]

Both APIs by default: ``enqueue_async`` awaited on an event loop, and the sync
``enqueue`` called from a plain thread, as a Django or Flask view calls it
(stored from that thread where the backend has a thread store, else through
the bridge loop: ``App._store_new_sync``).

On a shared machine the wall clock measures the neighbours as much as offload,
while the CPU time of the enqueuing process moves much less. Per backend URL,
one process enqueues, one by one, the task of the peer comparison (two
arguments, a ``str`` and a ``float``, validated on enqueue) ``--rounds`` times
``--jobs`` jobs after a warm-up, and reports the CPU µs of one enqueue (best
and median round: the best is the one the machine disturbed least) and the
median jobs/s. For a ``redis://`` URL it also reports the server's CPU µs per
enqueue, from ``INFO cpu`` before and after each round: meaningful only on a
server nobody else uses (start a throwaway ``redis-server`` on another port).

Counts that do not move with the load at all come from callgrind (README,
"Instructions instead of time").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from offload import App

TASK_NAME = "bench.cost"


async def _take(kind: str, sent: float) -> None:
    return None


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CPU per one-by-one enqueue")
    parser.add_argument("--backend", action="append", required=True, metavar="URL")
    parser.add_argument("--jobs", type=int, default=500, help="enqueues per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--api", action="append", choices=["async", "sync"],
                        help="which enqueue to time (default: both)")  # fmt: skip
    return parser.parse_args()


async def server_cpu(client: Any) -> float | None:
    """The Redis server's CPU seconds so far; ``None`` for other backends."""
    if client is None:
        return None
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_client(url: str) -> Any:
    """A plain client of the same server (offload's ``prefix`` left out)."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        return None
    import redis.asyncio

    return redis.asyncio.Redis.from_url(urlunsplit(parts._replace(query="")))


async def measure(url: str, jobs: int, rounds: int, api: str) -> dict[str, Any]:
    app = App(url)
    task = app.task(name=TASK_NAME, max_attempts=1)(_take).options(
        queue=f"cost-{uuid.uuid4().hex[:8]}"
    )

    async def enqueue(n: int) -> None:
        if api == "async":
            for _ in range(n):
                await task.enqueue_async("noop", time.time())
            return

        def in_thread() -> None:
            for _ in range(n):
                task.enqueue("noop", time.time())

        await asyncio.to_thread(in_thread)

    await enqueue(100)
    cpu, server, rate = [], [], []
    client = redis_client(url)
    for _ in range(rounds):
        s0, c0, w0 = await server_cpu(client), time.process_time(), time.perf_counter()
        await enqueue(jobs)
        w1, c1, s1 = time.perf_counter(), time.process_time(), await server_cpu(client)
        cpu.append((c1 - c0) / jobs * 1e6)
        rate.append(jobs / (w1 - w0))
        if s0 is not None and s1 is not None:
            server.append((s1 - s0) / jobs * 1e6)
    await app.close_async()
    await asyncio.to_thread(app.close)
    if client is not None:
        await client.aclose()
    row: dict[str, Any] = {
        "backend": url.split("://")[0], "api": api, "jobs": jobs, "rounds": rounds,
        "cpu_us_best": round(min(cpu), 1), "cpu_us_median": round(statistics.median(cpu), 1),
        "per_s_median": round(statistics.median(rate)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    if server:
        row["server_cpu_us_best"] = round(min(server), 1)
        row["server_cpu_us_median"] = round(statistics.median(server), 1)
    return row


def main() -> int:
    args = parse()
    for url in args.backend:
        for api in args.api or ["async", "sync"]:
            row = asyncio.run(measure(url, args.jobs, args.rounds, api))
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
