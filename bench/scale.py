"""Scale-out on one machine: 1, 2 and 4 ``offload worker`` processes draining one
backlog, 1 and 2 producer processes enqueuing one by one, and the broker's own
CPU per job.

    python bench/scale.py --jobs 20000 [--backend redis --backend redis-cluster
        --backend postgres --backend sqlite]

Redis and the 3-master Redis Cluster are started here on free loopback ports
(and stopped at the end), so their CPU (``INFO cpu``) and command counts
(``INFO commandstats``) are this run's alone: server CPU µs per job, and each
cluster node's share of the commands. PostgreSQL is the shared server (its own
schema per run); SQLite a fresh file. Every drain is verified through
``job_counts``. Results go to ``results/<date>-scale.json`` with the load
average next to each figure: on a shared 2-core machine, 2 and 4 workers
compete with each other and with everything else for the same 2 cores, so the
curve says what the broker and the protocol allow, not what 4 real hosts would do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import INT_TASK_NAME, bench_app

from offload.lifecycle import State

HERE = Path(__file__).resolve().parent
CHUNK = 1000
PG = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55_000 and port_free(port + 10_000):
            return port


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def start_redis(*extra: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port, home = free_port(), Path(tempfile.mkdtemp(prefix="offload-scale-"))
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(home), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=port).ping()
            return proc, port, home
        time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


@contextlib.contextmanager
def servers(wanted: list[str]) -> Iterator[dict[str, tuple[str, list[int]]]]:
    """URL and Redis node ports of every backend asked for."""
    procs: list[subprocess.Popen[bytes]] = []
    out: dict[str, tuple[str, list[int]]] = {}
    try:
        if "redis" in wanted:
            proc, port, _ = start_redis()
            procs.append(proc)
            out["redis"] = (f"redis://127.0.0.1:{port}/0", [port])
        if "redis-cluster" in wanted:
            nodes = [start_redis("--cluster-enabled", "yes") for _ in range(3)]
            procs += [p for p, _, _ in nodes]
            ports = [port for _, port, _ in nodes]
            subprocess.run(["redis-cli", "--cluster", "create",
                            *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            wait_cluster_ok(ports)
            out["redis-cluster"] = (f"redis+cluster://127.0.0.1:{ports[0]}", ports)
        if "postgres" in wanted:
            out["postgres"] = (f"{PG}?schema=offload_scale_{uuid.uuid4().hex[:6]}", [])
        if "sqlite" in wanted:
            db = Path(tempfile.mkdtemp(prefix="offload-scale-")) / "scale.db"
            out["sqlite"] = (f"sqlite:///{db}", [])
        yield out
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def wait_cluster_ok(ports: list[int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        infos = [redis.Redis(port=p).cluster("info") for p in ports]
        if all(i.get("cluster_state") == "ok" for i in infos):
            return
        time.sleep(0.2)
    raise RuntimeError("cluster did not become ok")


def redis_usage(ports: list[int]) -> dict[str, Any]:
    """Server CPU seconds and command calls per node."""
    usage: dict[str, Any] = {"cpu_s": 0.0, "calls": []}
    for port in ports:
        client = redis.Redis(port=port)
        cpu = client.info("cpu")
        usage["cpu_s"] += cpu["used_cpu_user"] + cpu["used_cpu_sys"]
        stats = client.info("commandstats")
        usage["calls"].append(sum(v["calls"] for v in stats.values()))
    return usage


def worker_argv(queue: str) -> list[str]:
    return [sys.executable, "-m", "offload", "worker", "apps:app", "--queues", queue,
            "--burst", "--concurrency", "50", "--log-level", "warning"]  # fmt: skip


def env(url: str) -> dict[str, str]:
    return {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(HERE)}


async def seed(url: str, queue: str, n: int) -> None:
    app, _ = bench_app(url)
    bound = app.tasks[INT_TASK_NAME].options(queue=queue)
    for start in range(0, n, CHUNK):
        await bound.enqueue_many_async([(i,) for i in range(start, min(start + CHUNK, n))])
    await app.close_async()


async def succeeded(url: str, queue: str) -> int:
    app, _ = bench_app(url)
    counts = await (await app.backend()).job_counts()
    await app.close_async()
    return counts.get((queue, State.SUCCEEDED), 0)


def drain(url: str, ports: list[int], n: int, workers: int) -> dict[str, Any]:
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    asyncio.run(seed(url, queue, n))
    before = redis_usage(ports) if ports else None
    began = time.perf_counter()
    procs = [subprocess.Popen(worker_argv(queue), env=env(url)) for _ in range(workers)]
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - began
    if any(codes):
        raise SystemExit(f"a worker exited with {codes} on {url}")
    done = asyncio.run(succeeded(url, queue))
    if done != n:
        raise SystemExit(f"{url}: {done} of {n} jobs succeeded")
    row: dict[str, Any] = {"workers": workers, "jobs": n, "seconds": round(seconds, 2),
                           "jobs_per_s": round(n / seconds)}  # fmt: skip
    if before is not None:
        after = redis_usage(ports)
        row["server_cpu_us_per_job"] = round((after["cpu_s"] - before["cpu_s"]) / n * 1e6, 1)
        calls = [a - b for a, b in zip(after["calls"], before["calls"], strict=True)]
        row["node_call_share"] = [round(c / max(sum(calls), 1), 3) for c in calls]
    row["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return row


PRODUCER = """
import asyncio, sys, time
sys.path.insert(0, {here!r})
from apps import INT_TASK_NAME, bench_app
async def main():
    app, _ = bench_app({url!r})
    task = app.tasks[INT_TASK_NAME].options(queue={queue!r})
    await task.enqueue_async(0)
    began = time.perf_counter()
    for i in range({n}):
        await task.enqueue_async(i)
    print(time.perf_counter() - began)
    await app.close_async()
asyncio.run(main())
"""


def produce(url: str, n: int, producers: int) -> dict[str, Any]:
    """``producers`` processes, each enqueuing ``n`` jobs one call at a time."""
    queue = f"scale-p-{uuid.uuid4().hex[:8]}"
    code = PRODUCER.format(here=str(HERE), url=url, queue=queue, n=n)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(producers)]  # fmt: skip
    seconds = [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"producers": producers, "jobs": n * producers,
            "jobs_per_s": round(n * producers / max(seconds)),
            "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", action="append", metavar="NAME",
                        choices=["redis", "redis-cluster", "postgres", "sqlite"])  # fmt: skip
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--producer-jobs", type=int, default=3_000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    wanted = args.backend or ["redis", "redis-cluster", "postgres", "sqlite"]
    results: dict[str, Any] = {}
    with servers(wanted) as urls:
        for name in wanted:
            url, ports = urls[name]
            rows = [drain(url, ports, args.jobs, int(k)) for k in args.workers.split(",")]
            prod = [produce(url, args.producer_jobs, p) for p in (1, 2)]
            results[name] = {"drain": rows, "produce": prod}
            print(json.dumps({name: results[name]}), flush=True)
    out = HERE / "results" / f"{dt.date.today().isoformat()}-scale.json"
    out.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
