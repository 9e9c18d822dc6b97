"""Throughput of offload per backend: enqueue one by one, bulk enqueue, the
drain rate of one worker process, and enqueue-to-start latency.

    python bench/throughput.py --backend sqlite:////tmp/offload-bench.db --backend memory://

Each run uses a fresh queue name, so an existing database does not mix into the
counts. The drain is measured in a separate process (``drain.py``), as a worker
runs in production, and checked by counting the queue's succeeded jobs through
``job_counts``. ``memory://`` cannot be shared between processes, so its worker
process enqueues its own jobs (outside the timing). Latency is ``latency.py``'s
measurement (its docstring explains the method). ``--repeat`` runs everything
again and reports the median run with the range.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import latency
from apps import SYNC_TASK_NAME, bench_app

from offload.lifecycle import State

HERE = Path(__file__).resolve().parent
CHUNK = 1000
# Targets per backend with one worker process on a 2-core machine; latency in ms.
# The ratios to the peers (one-by-one enqueue, latency p50, drain against the
# best Redis peer) are bench/peers' to report: they need the peers beside.
TARGETS: dict[str, dict[str, float]] = {
    "sqlite": {"drain_per_s": 20_000, "enqueue_bulk_per_s": 100_000, **latency.TARGETS},
    "postgresql": {"drain_per_s": 20_000, "enqueue_bulk_per_s": 100_000, **latency.TARGETS},
    "redis": {"drain_per_s": 25_000, "enqueue_bulk_per_s": 100_000, **latency.TARGETS},
}
LOWER_IS_BETTER = frozenset(latency.TARGETS)
MEASURES = ("enqueue_one_per_s", "enqueue_bulk_per_s", "drain_per_s", "drain_seconds",
            "drain_process_seconds", "p50_ms", "p99_ms", "idle_cpu_pct")  # fmt: skip
console = Console(width=None if sys.stdout.isatty() else 200)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload throughput per backend")
    parser.add_argument("--backend", action="append", required=True, metavar="URL",
                        help="backend URL; repeat to compare backends")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs bulk-enqueued and drained")
    parser.add_argument("--single-jobs", type=int, default=5_000,
                        help="jobs enqueued one by one (also drained)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=50, help="worker concurrency")
    parser.add_argument("--latency-jobs", type=int, default=200,
                        help="latency probes (see latency.py); 0 skips latency")  # fmt: skip
    parser.add_argument("--latency-rate", type=float, default=100.0, help="probes per second")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend")
    parser.add_argument("--sync", action="store_true",
                        help="a plain def no-op task, run on the worker's threads")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


def redact(url: str) -> str:
    """The URL without its password, for the printed and saved results."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def shared(url: str) -> bool:
    return not url.startswith("memory:")


def family(url: str) -> str:
    """The key of ``TARGETS`` a backend URL belongs to."""
    scheme = urlsplit(url).scheme.lower()
    if scheme.startswith("postgres"):
        return "postgresql"
    if scheme in ("redis", "rediss", "valkey", "redis+cluster"):
        return "redis"
    return scheme


async def enqueue_single(task: Any, queue: str, n: int) -> float:
    bound = task.options(queue=queue)
    began = time.perf_counter()
    for _ in range(n):
        await bound.enqueue_async()
    return time.perf_counter() - began


async def enqueue_bulk(task: Any, queue: str, n: int) -> float:
    bound = task.options(queue=queue)
    began = time.perf_counter()
    for start in range(0, n, CHUNK):
        await bound.enqueue_many_async([()] * min(CHUNK, n - start))
    return time.perf_counter() - began


def drain(url: str, queue: str, seed: int, concurrency: int, sync: bool = False
          ) -> tuple[dict[str, float], float]:  # fmt: skip
    """Run one worker process; its own timing and the wall time around it."""
    command = [sys.executable, str(HERE / "drain.py"), "--backend", url, "--queue", queue,
               "--seed", str(seed), "--concurrency", str(concurrency),
               *(["--sync"] if sync else [])]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"drain process failed ({done.returncode}):\n{done.stderr}")
    report: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return report, wall


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app, task = bench_app(url)
    if args.sync:
        task = app.tasks[SYNC_TASK_NAME]
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    total = args.single_jobs + args.jobs
    try:
        single = await enqueue_single(task, queue, args.single_jobs)
        bulk = await enqueue_bulk(task, queue, args.jobs)
        seed = 0 if shared(url) else total
        report, wall = await asyncio.to_thread(drain, url, queue, seed, args.concurrency, args.sync)
        succeeded = int(report["succeeded"])
        if shared(url):
            counts = await (await app.backend()).job_counts()
            succeeded = counts.get((queue, State.SUCCEEDED), 0)
    finally:
        await app.close_async()
    timing: dict[str, Any] = {}
    if args.latency_jobs:
        timing = await latency.measure(url, args.latency_jobs, args.latency_rate)
    return {
        "backend": redact(url),
        "jobs": total,
        "enqueue_one_per_s": round(args.single_jobs / single),
        "enqueue_bulk_per_s": round(args.jobs / bulk),
        "drain_per_s": round(total / report["seconds"]),
        "drain_seconds": round(report["seconds"], 3),
        "drain_process_seconds": round(wall, 3),
        "succeeded": succeeded,
        "verified": succeeded == total,
        **{k: timing[k] for k in ("p50_ms", "p99_ms", "max_ms", "idle_cpu_pct") if k in timing},
    }


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each measure over the runs, with its range and every run."""
    row = dict(runs[0])
    for key in MEASURES:
        values = [r[key] for r in runs if key in r]
        if values:
            row[key] = statistics.median(values)
            row[f"{key}_range"] = [min(values), max(values)]
    row["succeeded"] = sum(r["succeeded"] for r in runs)
    row["jobs"] = sum(r["jobs"] for r in runs)
    row["verified"] = all(r["verified"] for r in runs)
    if len(runs) > 1:
        row["runs"] = runs
    return row


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "offload": importlib.metadata.version("offload"),
        # Other processes compete for the CPUs on a shared machine: say how busy it
        # was (1, 5 and 15 minutes, read when the results are saved).
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def figure(row: dict[str, Any], key: str) -> str:
    """The median, and the range when runs differ."""
    if key not in row:
        return "—"
    number = ",.0f" if key.endswith("_per_s") else ",.2f"
    text = format(row[key], number)
    low, high = row.get(f"{key}_range", (row[key], row[key]))
    if low != high:
        text += f"\n({format(low, number)}-{format(high, number)})"
    return text


def verdict(row: dict[str, Any], key: str) -> str:
    text = figure(row, key)
    target = TARGETS.get(family(row["backend"]), {}).get(key)
    if target is None or key not in row:
        return text
    lower = key in LOWER_IS_BETTER
    ok = row[key] < target if lower else row[key] >= target
    sign = ("<" if ok else "≥") if lower else ("≥" if ok else "<")
    return f"{text}\n[{'green' if ok else 'red'}]{sign} {target:,g}[/]"


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    kind = "sync no-op task (on threads)" if args.sync else "no-op task"
    table = Table(title=f"offload throughput: {kind}, 1 worker process, "
                  f"concurrency {args.concurrency}", title_justify="left")  # fmt: skip
    for name in ("backend", "enqueue 1-by-1 /s", "bulk enqueue /s", "drain /s",
                 "drain s", "process s", "latency p50 ms", "latency p99 ms", "idle CPU %",
                 "verified"):  # fmt: skip
        table.add_column(name, justify="left" if name == "backend" else "right",
                         overflow="fold")  # fmt: skip
    for row in rows:
        table.add_row(
            row["backend"], figure(row, "enqueue_one_per_s"), verdict(row, "enqueue_bulk_per_s"),
            verdict(row, "drain_per_s"), figure(row, "drain_seconds"),
            figure(row, "drain_process_seconds"), verdict(row, "p50_ms"), verdict(row, "p99_ms"),
            verdict(row, "idle_cpu_pct"),
            f"{row['succeeded']:,}/{row['jobs']:,}" + ("" if row["verified"] else " ✗"),
        )  # fmt: skip
    console.print(table)


def save(rows: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-sync" if args.sync else ""
    path = args.out / f"{dt.date.today().isoformat()}-throughput{suffix}.json"
    settings = {"jobs": args.jobs, "single_jobs": args.single_jobs,
                "concurrency": args.concurrency, "chunk": CHUNK,
                "latency_jobs": args.latency_jobs, "latency_rate": args.latency_rate,
                "repeat": args.repeat, "sync_task": args.sync}  # fmt: skip
    document = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": machine(), "settings": settings, "targets": TARGETS,
                "results": rows}  # fmt: skip
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main() -> int:
    args = parse()
    rows = []
    for url in args.backend:
        runs = []
        for i in range(args.repeat):
            console.print(f"[dim]measuring {redact(url)} (run {i + 1}/{args.repeat}) …[/]")
            runs.append(asyncio.run(measure(url, args)))
        rows.append(combine(runs))
    print_table(rows, args)
    console.print(f"saved {save(rows, args)}")
    return 0 if all(row["verified"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
