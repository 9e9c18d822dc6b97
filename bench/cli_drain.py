"""offload measured as users run it: ``offload worker`` started as a process,
on a task that takes one ``int`` argument.

    python bench/cli_drain.py --backend redis://127.0.0.1:6379/7 \\
        --backend 'postgresql://postgres@127.0.0.1/test?schema=offload_cli_bench' \\
        --backend sqlite:////tmp/offload-cli-bench.db --jobs 50000

For each backend URL, on a fresh queue:

1. start-up: ``offload worker apps:app --burst`` on the empty queue, from
   the fork until the process has exited, and its peak RSS (its ``VmHWM``,
   which restarts at exec): what every worker pays before its first job;
2. ``--jobs`` jobs of ``bench.int`` (one ``int`` argument, validated on both
   sides), bulk-enqueued outside the timing;
3. drain: the same command with ``--burst`` on the full queue; jobs/s over the
   process's whole life (what a user's stopwatch sees) and over its life minus
   step 1's start-up (the worker's own rate), and the peak RSS;
4. the queue's succeeded jobs counted through ``job_counts``: the run fails when
   they do not match.

The machine's load average is saved with every figure: absolute rates on a
shared machine are noisy, so compare rows of one run. Results go to
``results/<date>-cli-drain.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import INT_TASK_NAME, bench_app
from procs import status_kib

from offload.lifecycle import State

HERE = Path(__file__).resolve().parent
CHUNK = 1000


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload worker as a process")
    parser.add_argument("--backend", action="append", required=True, metavar="URL")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-save", action="store_true")
    return parser.parse_args()


def run_worker(url: str, queue: str, concurrency: int) -> dict[str, float]:
    """One ``offload worker --burst`` process: wall seconds and peak RSS."""
    env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "PYTHONPATH": str(HERE)}
    argv = [sys.executable, "-m", "offload", "worker", "apps:app", "--queues", queue,
            "--burst", "--concurrency", str(concurrency), "--log-level", "warning"]  # fmt: skip
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    peak_kib = 0
    while True:
        # wait4's ru_maxrss would count the fork of this (bigger) process too;
        # VmHWM restarts at exec, so it is the worker's own peak.
        peak_kib = max(peak_kib, status_kib(proc.pid, "VmHWM"))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"worker exited with {proc.returncode} on {url}")
    return {"seconds": seconds, "rss_mib": peak_kib / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime}  # fmt: skip


async def seed(url: str, queue: str, n: int) -> float:
    app, _ = bench_app(url)
    bound = app.tasks[INT_TASK_NAME].options(queue=queue)
    began = time.perf_counter()
    for start in range(0, n, CHUNK):
        await bound.enqueue_many_async([(i,) for i in range(start, min(start + CHUNK, n))])
    seconds = time.perf_counter() - began
    await app.close_async()
    return n / seconds


async def succeeded(url: str, queue: str) -> int:
    app, _ = bench_app(url)
    counts = await (await app.backend()).job_counts()
    await app.close_async()
    return counts.get((queue, State.SUCCEEDED), 0)


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    queue = f"cli-{uuid.uuid4().hex[:8]}"
    startup = run_worker(url, queue, args.concurrency)
    bulk = asyncio.run(seed(url, queue, args.jobs))
    drain = run_worker(url, queue, args.concurrency)
    done = asyncio.run(succeeded(url, queue))
    if done != args.jobs:
        raise SystemExit(f"{url}: {done} of {args.jobs} jobs succeeded")
    own = max(drain["seconds"] - startup["seconds"], 1e-9)
    return {
        "backend": url.split("://")[0], "jobs": args.jobs,
        "startup_s": round(startup["seconds"], 3), "startup_rss_mib": round(startup["rss_mib"], 1),
        "startup_cpu_s": round(startup["cpu_s"], 3),
        "bulk_enqueue_per_s": round(bulk), "drain_s": round(drain["seconds"], 2),
        "drain_per_s_with_startup": round(args.jobs / drain["seconds"]),
        "drain_per_s": round(args.jobs / own), "drain_rss_mib": round(drain["rss_mib"], 1),
        "cpu_us_per_job": round(drain["cpu_s"] / args.jobs * 1e6, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip


def main() -> int:
    args = parse()
    rows = []
    for _ in range(args.repeat):
        for url in args.backend:
            row = measure(url, args)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if not args.no_save:
        out = HERE / "results" / f"{dt.date.today().isoformat()}-cli-drain.json"
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
                   "platform": platform.platform()}  # fmt: skip
        out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
        print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
