"""Throughput of offload per backend: enqueue one by one, bulk enqueue, and the
drain rate of one worker process.

    python bench/throughput.py --backend sqlite:////tmp/offload-bench.db --backend memory://

Each run uses a fresh queue name, so an existing database does not mix into the
counts. The drain is measured in a separate process (``drain.py``), as a worker
runs in production, and checked by counting the queue's succeeded jobs through
``job_counts``. ``memory://`` cannot be shared between processes, so its worker
process enqueues its own jobs (outside the timing).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
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

from apps import bench_app

from offload.lifecycle import State

HERE = Path(__file__).resolve().parent
CHUNK = 1000
# Targets for SQLite with one worker process on a 2-core machine.
TARGETS = {"drain_per_s": 5_000, "enqueue_bulk_per_s": 50_000}
console = Console(width=None if sys.stdout.isatty() else 160)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload throughput per backend")
    parser.add_argument("--backend", action="append", required=True, metavar="URL",
                        help="backend URL; repeat to compare backends")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs bulk-enqueued and drained")
    parser.add_argument("--single-jobs", type=int, default=5_000,
                        help="jobs enqueued one by one (also drained)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=50, help="worker concurrency")
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


def drain(url: str, queue: str, seed: int, concurrency: int) -> tuple[dict[str, float], float]:
    """Run one worker process; its own timing and the wall time around it."""
    command = [sys.executable, str(HERE / "drain.py"), "--backend", url, "--queue", queue,
               "--seed", str(seed), "--concurrency", str(concurrency)]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"drain process failed ({done.returncode}):\n{done.stderr}")
    report: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return report, wall


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app, task = bench_app(url)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    total = args.single_jobs + args.jobs
    try:
        single = await enqueue_single(task, queue, args.single_jobs)
        bulk = await enqueue_bulk(task, queue, args.jobs)
        seed = 0 if shared(url) else total
        report, wall = await asyncio.to_thread(drain, url, queue, seed, args.concurrency)
        succeeded = int(report["succeeded"])
        if shared(url):
            counts = await (await app.backend()).job_counts()
            succeeded = counts.get((queue, State.SUCCEEDED), 0)
    finally:
        await app.close_async()
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
    }


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "offload": importlib.metadata.version("offload"),
        # Other processes compete for the CPUs on a shared machine: say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def verdict(row: dict[str, Any], key: str) -> str:
    value = f"{row[key]:,}"
    if not row["backend"].startswith("sqlite:"):
        return value
    ok = row[key] >= TARGETS[key]
    return f"{value} [{'green' if ok else 'red'}]({'≥' if ok else '<'} {TARGETS[key]:,})[/]"


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(title=f"offload throughput: no-op task, 1 worker process, "
                  f"concurrency {args.concurrency}", title_justify="left")  # fmt: skip
    for name in ("backend", "enqueue 1-by-1 /s", "bulk enqueue /s", "drain /s",
                 "drain s", "process s", "verified"):  # fmt: skip
        table.add_column(name, justify="left" if name == "backend" else "right", no_wrap=True)
    for row in rows:
        table.add_row(
            row["backend"], f"{row['enqueue_one_per_s']:,}", verdict(row, "enqueue_bulk_per_s"),
            verdict(row, "drain_per_s"), f"{row['drain_seconds']:.2f}",
            f"{row['drain_process_seconds']:.2f}",
            f"{row['succeeded']:,}/{row['jobs']:,}" + ("" if row["verified"] else " ✗"),
        )  # fmt: skip
    console.print(table)


def save(rows: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{dt.date.today().isoformat()}-throughput.json"
    settings = {"jobs": args.jobs, "single_jobs": args.single_jobs,
                "concurrency": args.concurrency, "chunk": CHUNK}  # fmt: skip
    document = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": machine(), "settings": settings, "targets_sqlite": TARGETS,
                "results": rows}  # fmt: skip
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main() -> int:
    args = parse()
    rows = []
    for url in args.backend:
        console.print(f"[dim]measuring {redact(url)} …[/]")
        rows.append(asyncio.run(measure(url, args)))
    print_table(rows, args)
    console.print(f"saved {save(rows, args)}")
    return 0 if all(row["verified"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
