"""Many live streams and many API requests at once, per backend (issue 13).

    python bench/concurrency.py --backend sqlite:////tmp/offload-conc.db \
        --backend 'postgresql://postgres@127.0.0.1/test?schema=offload_conc_bench' \
        --backend 'redis://127.0.0.1:6379/7?prefix=conc' [--streams 200] [--requests 200]

Method, per backend: ``create_app`` is served by uvicorn in a child process (so
the load generator does not share the server's interpreter), after the child
seeded ``--seed`` jobs (their events make a feed a new stream must find the
tail of). This process opens ``--streams`` ``/api/v1/stream`` connections without
a cursor and waits for every ``ready`` message (the time to open them all is
reported), then, with all of them open, fires ``--requests`` concurrent API
requests ``--rounds`` times: a mix of job listings, one job, queue counts, the
event feed and enqueues. Reported: the status codes (any 5xx fails the run),
p50/p99/max of the API requests, the server's CPU time per request, and how
many streams were still open at the end. The target (no 5xx, p99 under 100 ms)
is measured here, never asserted by a timed test. Results are printed and saved
to ``results/<date>-concurrency.json``.

``--server-processes N`` (N > 1) serves with ``offload web apps:app --workers N``
instead, as users scale one server out; the bench process seeds the jobs
first (not on ``memory://``, whose jobs live in one process).

The load generator is aiohttp, not httpx: with 200 concurrent requests httpx's
own client spends ~2 ms of CPU per request and stalls a whole round for ~4 s
while it replaces pooled connections, against a bare Starlette app as much as
against offload, so its figures measured the client. One aiohttp connection per
concurrent request is kept alive across rounds, as 200 real clients would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from procs import cpu_seconds, free_port, tree_cpu_seconds

HERE = Path(__file__).resolve().parent
TARGET_P99_MS = 100.0
TASK = "bench.int"  # one int argument, in both servers below (apps.py)

SERVER = """
import asyncio, sys
import uvicorn
from offload import App
from offload.web import create_app

url, port, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = App(url)

@app.task(name="bench.int")
def noop(n: int) -> int:
    return n

async def fill() -> None:
    for start in range(0, seed, 1000):
        await noop.enqueue_many_async([(n,) for n in range(start, min(seed, start + 1000))])
    await app.close_async()

asyncio.run(fill())
print("seeded", flush=True)
# Keep-alive longer than a run's quiet spells: a connection the server drops
# while the client reuses it is a client-side reset, not the server's answer.
uvicorn.run(create_app(app), host="127.0.0.1", port=port, log_level="warning",
            timeout_keep_alive=120, backlog=4096)
"""


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload: streams and API requests at once")
    parser.add_argument("--backend", action="append", metavar="URL", required=True)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200, help="concurrent requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3000, help="jobs enqueued before the run")
    parser.add_argument(
        "--server-processes",
        type=int,
        default=1,
        help="offload web --workers N (not with memory://)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


async def wait_up(base: str, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                why = child.stderr.read() if child.stderr else ""
                raise RuntimeError(f"the server exited: {why}")
            try:
                async with client.get(f"{base}/healthz") as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not start in 120 s")


async def open_stream(client: aiohttp.ClientSession, url: str, ready: asyncio.Event,
                      alive: list[int], statuses: list[int]) -> None:  # fmt: skip
    try:
        async with client.get(url) as response:
            statuses.append(response.status)
            if response.status != 200:
                ready.set()
                return
            alive[0] += 1
            try:
                async for line in response.content:
                    if line.startswith(b"event: ready"):
                        ready.set()
            finally:
                alive[0] -= 1
    except (aiohttp.ClientError, asyncio.CancelledError):
        ready.set()


async def one_request(client: aiohttp.ClientSession, base: str, n: int, job_id: str
                      ) -> tuple[int, float]:  # fmt: skip
    started = time.perf_counter()
    try:
        status = await _send(client, base, n, job_id)
    except (TimeoutError, aiohttp.ClientError):
        return 0, (time.perf_counter() - started) * 1000  # 0: no answer (reset, timeout)
    return status, (time.perf_counter() - started) * 1000


async def _send(client: aiohttp.ClientSession, base: str, n: int, job_id: str) -> int:
    """One request of the mix, its body read in full (a request ends with its body)."""
    kind = n % 5
    if kind == 4:
        call = client.post(f"{base}/api/v1/jobs", json={"task": TASK, "args": [n]})
    else:
        path = ("jobs?limit=50", f"jobs/{job_id}", "queues", "events?limit=50")[kind]
        call = client.get(f"{base}/api/v1/{path}")
    async with call as r:
        await r.read()
        return r.status


async def start_server(url: str, port: int, args: argparse.Namespace) -> subprocess.Popen[str]:
    """Started once before the measurement; blocking for its fork is harmless here."""
    if args.server_processes == 1:
        argv = [sys.executable, "-c", SERVER, url, str(port), str(args.seed)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: ASYNC220
    sys.path.insert(0, str(HERE))
    from apps import bench_app

    app, _ = bench_app(url)
    take_int = app.tasks[TASK]
    for start in range(0, args.seed, 1000):
        await take_int.enqueue_many_async(
            [(n,) for n in range(start, min(args.seed, start + 1000))]
        )
    await app.close_async()
    env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(HERE)}
    argv = [sys.executable, "-m", "offload", "web", "apps:app", "--port", str(port), "--open",
            "--workers", str(args.server_processes), "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: ASYNC220
                            text=True)  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    child = await start_server(url, port, args)
    try:
        await wait_up(base, child)
        connector = aiohttp.TCPConnector(limit=args.streams + args.requests + 10)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            async with client.get(f"{base}/api/v1/jobs?limit=1") as first:
                job_id = (await first.json())["jobs"][0]["id"]
            alive, stream_statuses = [0], []
            readies = [asyncio.Event() for _ in range(args.streams)]
            opened = time.perf_counter()
            feed = f"{base}/api/v1/stream"
            tasks = [asyncio.create_task(open_stream(client, feed, r, alive, stream_statuses))
                     for r in readies]  # fmt: skip
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
            open_s = time.perf_counter() - opened
            results: list[tuple[int, float]] = []
            cpu_before = tree_cpu_seconds([child.pid])
            client_before = cpu_seconds(os.getpid())
            for _ in range(args.rounds):
                results += await asyncio.gather(
                    *(one_request(client, base, n, job_id) for n in range(args.requests))
                )
            server_cpu = tree_cpu_seconds([child.pid]) - cpu_before
            client_cpu = cpu_seconds(os.getpid()) - client_before
            still_open = alive[0]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:  # uvicorn waits for streams it still counts open
            child.kill()
            child.wait(10)
    latencies = [ms for _, ms in results]
    codes: dict[str, int] = {}
    for status, _ in [*results, *((s, 0.0) for s in stream_statuses)]:
        codes[str(status)] = codes.get(str(status), 0) + 1
    return {
        "backend": url.split("://")[0], "server_processes": args.server_processes,
        "streams": args.streams, "streams_open_s": round(open_s, 2),
        "streams_still_open": still_open,
        "requests": len(results),
        "status_codes": codes,
        "server_errors": sum(n for code, n in codes.items() if code.startswith("5")),
        "no_answer": codes.get("0", 0),
        # What the p99 is made of on a quiet machine: the server's CPU for one
        # request (its share of the streams' work included), which a machine
        # shared with other work does not change much, unlike the p99 itself.
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(len(results), 1), 3),
        # The load generator's own, on the same cores: one asyncio process
        # reading 200 responses and 200 streams is not free either.
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(len(results), 1), 3),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }  # fmt: skip


def main() -> None:
    args = parse()
    load_before = os.getloadavg()
    rows = [asyncio.run(measure(url, args)) for url in args.backend]
    load_after = os.getloadavg()
    for row in rows:
        verdict = "ok" if row["server_errors"] == 0 and row["p99_ms"] < TARGET_P99_MS else "MISSED"
        print(json.dumps(row), verdict)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{dt.date.today().isoformat()}-concurrency.json"
    path.write_text(json.dumps({
        "target": {"server_errors": 0, "p99_ms_below": TARGET_P99_MS},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": load_after},
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "backend")},
        "results": rows,
    }, indent=2) + "\n")  # fmt: skip
    print(f"saved {path}")


if __name__ == "__main__":
    main()
