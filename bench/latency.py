"""Enqueue-to-start latency of offload per backend, into an idle running worker.

    python bench/latency.py --backend postgresql://postgres@127.0.0.1/test \
        --backend redis://127.0.0.1:6379/5 --backend sqlite:////tmp/offload-lat.db [--repeat 3]

Method, per backend and per repeat:

1. A worker process is started as users start one (``Worker(app, [queue])``,
   the app's default settings, concurrency 50) on a fresh queue. ``memory://``
   cannot be shared between processes, so there the worker runs in this
   process, as a task beside the producer.
2. One probe job is run first and awaited: the worker is then listening, its
   connections are open and its imports done.
3. The idle worker is left alone for ``--idle-seconds``; the CPU time its process
   used meanwhile (``/proc/<pid>/stat``) is its idle cost as a share of one core,
   which is what a faster poll would raise.
4. ``--jobs`` probes are enqueued one by one from this process at ``--rate`` per
   second (paced from one start time, so a slow call does not shift the rest).
   Each probe carries ``time.time()`` read just before its enqueue call; the
   task's first line returns ``time.time()`` minus that value, and the result
   is stored with the job. Both readings use the machine's one wall clock, so
   the delay covers the whole path: the producer's enqueue call, the wake-up,
   the lease, and the worker starting the task.
5. Once every probe has succeeded, each one's delay is read back through
   ``job_get``. p50 is the median; p99 is the 99th percentile of
   ``statistics.quantiles(method="inclusive")``, the same as the peer harness.
   The median split is reported beside it, from the job's ``created_at`` and
   ``started_at`` (the backend's clock, which here is the machine's): ``enqueue``
   is the producer's call until the row exists, ``lease`` the row until the
   worker's lease, ``start`` the lease until the task's first line; the p99 of
   each part says which step the slowest probes lost their time in.

Results are printed and saved to ``results/<date>-latency.json``;
``throughput.py`` runs the same measurement for each of its backends.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import bench_app, probe_task
from procs import cpu_seconds

from offload import App
from offload.lifecycle import State
from offload.worker import Worker

HERE = Path(__file__).resolve().parent
CONCURRENCY = 50
WAIT_FOR_WORKER = 60.0  # seconds the warm-up probe may take (imports, connections)
WAIT_FOR_PROBES = 60.0  # seconds after the last enqueue for every probe to finish
# Targets with one idle worker process, on every backend: p99 in ms, and the
# idle process's share of one core in %. (p50's target is a ratio: no worse
# than the best peer on the same broker, which bench/peers measures.)
TARGETS = {"p99_ms": 5.0, "idle_cpu_pct": 1.0}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="offload enqueue-to-start latency")
    parser.add_argument("--backend", action="append", metavar="URL",
                        help="backend URL; repeat to compare backends")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=200, help="probes per run")
    parser.add_argument("--rate", type=float, default=100.0, help="probes per second")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    # The worker side, run by this script in a child process.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.backend:
        parser.error("--backend is required")
    return args


def shared(url: str) -> bool:
    return not url.startswith("memory:")


# the worker ---------------------------------------------------------------------------


async def serve(url: str, queue: str) -> None:
    """The worker process: runs until SIGTERM, like a deployed worker."""
    app, _ = bench_app(url)
    try:
        await Worker(app, [queue], concurrency=CONCURRENCY).run()
    finally:
        await app.close_async()


class WorkerProcess:
    """The worker under test: a child process, or a task of this loop (memory://)."""

    def __init__(self, app: App, url: str, queue: str) -> None:
        self.app, self.url, self.queue = app, url, queue
        self.proc: subprocess.Popen[bytes] | None = None
        self.task: asyncio.Task[None] | None = None
        self.worker: Worker | None = None

    def start(self) -> None:
        if shared(self.url):
            command = [sys.executable, str(Path(__file__).resolve()), "--serve",
                       "--backend", self.url, "--queue", self.queue]  # fmt: skip
            self.proc = subprocess.Popen(command)
        else:
            self.worker = Worker(self.app, [self.queue], concurrency=CONCURRENCY,
                                 handle_signals=False)  # fmt: skip
            self.task = asyncio.create_task(self.worker.run())

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else os.getpid()

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker process exited with {self.proc.returncode}")
        if self.task is not None and self.task.done():
            self.task.result()
            raise RuntimeError("worker stopped")

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        if self.worker is not None and self.task is not None:
            self.worker.stop(force=True)
            await self.task


# the producer ---------------------------------------------------------------------------


async def wait_succeeded(app: App, queue: str, n: int, worker: WorkerProcess,
                         timeout: float) -> None:  # fmt: skip
    backend = await app.backend()
    deadline = time.monotonic() + timeout
    while (await backend.job_counts()).get((queue, State.SUCCEEDED), 0) < n:
        worker.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} probes succeeded within {timeout:.0f}s")
        await asyncio.sleep(0.02)


def percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(cuts[98], 2),
            "max_ms": round(ms[-1], 2)}  # fmt: skip


async def run_once(url: str, jobs: int, rate: float, idle_seconds: float) -> dict[str, Any]:
    app, _ = bench_app(url)
    probe = probe_task(app)
    queue = f"lat-{uuid.uuid4().hex[:8]}"
    bound = probe.options(queue=queue)
    worker = WorkerProcess(app, url, queue)
    try:
        await app.backend()
        worker.start()
        await bound.enqueue_async(sent=time.time())
        await wait_succeeded(app, queue, 1, worker, WAIT_FOR_WORKER)
        cpu_before, wall_before = cpu_seconds(worker.pid), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        idle_cpu = (cpu_seconds(worker.pid) - cpu_before) / (time.perf_counter() - wall_before)
        ids: list[str] = []
        began = time.perf_counter()
        for i in range(jobs):
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            ids.append((await bound.enqueue_async(sent=time.time())).id)
        await wait_succeeded(app, queue, jobs + 1, worker, WAIT_FOR_PROBES)
        done = [await app.get_job_async(job_id) for job_id in ids]
    finally:
        await worker.stop()
        await app.close_async()
    delays = [float(job.result) * 1000 for job in done]
    # Where the time goes, by the backend's clock (the machine's, for every
    # backend here): the enqueue call until the job row exists, the row until
    # the lease, and the lease until the task's first line.
    parts: dict[str, list[float]] = {"enqueue": [], "lease": [], "start": []}
    for job in done:
        if job.started_at is None:
            continue
        sent = float(job.arguments["sent"])
        created, started = job.created_at.timestamp(), job.started_at.timestamp()
        parts["enqueue"].append((created - sent) * 1000)
        parts["lease"].append((started - created) * 1000)
        parts["start"].append((sent + float(job.result) - started) * 1000)
    medians = {f"{k}_p50_ms": round(statistics.median(v), 2) for k, v in parts.items() if v}
    # The tail of each part too: which step the slowest probes lost their time in.
    tails = {f"{k}_p99_ms": percentiles(v)["p99_ms"] for k, v in parts.items() if len(v) > 1}
    return {**percentiles(delays), **medians, **tails, "idle_cpu_pct": round(idle_cpu * 100, 2),
            "n": len(delays)}  # fmt: skip


async def measure(url: str, jobs: int = 200, rate: float = 100.0, repeat: int = 1,
                  idle_seconds: float = 3.0) -> dict[str, Any]:  # fmt: skip
    """Every run of one backend, and the median run's figures with their range."""
    runs = [await run_once(url, jobs, rate, idle_seconds) for _ in range(repeat)]
    out: dict[str, Any] = {"jobs": jobs, "rate": rate, "runs": runs}
    for key in ("p50_ms", "p99_ms", "max_ms", "enqueue_p50_ms", "lease_p50_ms", "start_p50_ms",
                "enqueue_p99_ms", "lease_p99_ms", "start_p99_ms", "idle_cpu_pct"):  # fmt: skip
        values = [r[key] for r in runs]
        out[key] = round(statistics.median(values), 2)
        out[f"{key}_range"] = [min(values), max(values)]
    return out


def cell(row: dict[str, Any], key: str) -> str:
    low, high = row[f"{key}_range"]
    spread = "" if low == high else f" ({low:g}-{high:g})"
    return f"{row[key]:g}{spread}"


def main() -> int:
    args = parse()
    if args.serve:
        asyncio.run(serve(args.backend[0], args.queue))
        return 0
    from rich.console import Console
    from rich.table import Table
    from throughput import machine, redact

    console = Console(width=None if sys.stdout.isatty() else 160)
    rows = []
    for url in args.backend:
        console.print(f"[dim]latency of {redact(url)} …[/]")
        row = asyncio.run(measure(url, args.jobs, args.rate, args.repeat, args.idle_seconds))
        rows.append({"backend": redact(url), **row})
    title = (f"offload latency: {args.jobs} probes at {args.rate:g}/s into an idle worker, "
             f"{args.repeat} run(s); median run (range)")  # fmt: skip
    table = Table(title=title, title_justify="left")
    columns = {"p50 ms": "p50_ms", "p99 ms": "p99_ms", "max ms": "max_ms",
               "enqueue p50": "enqueue_p50_ms", "lease p50": "lease_p50_ms",
               "start p50": "start_p50_ms", "enqueue p99": "enqueue_p99_ms",
               "lease p99": "lease_p99_ms", "start p99": "start_p99_ms",
               "idle CPU %": "idle_cpu_pct"}  # fmt: skip
    table.add_column("backend", overflow="fold")
    for name in columns:
        table.add_column(name, justify="right", overflow="fold")
    for row in rows:
        table.add_row(row["backend"], *(cell(row, k) for k in columns.values()))
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{dt.date.today().isoformat()}-latency.json"
    document = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": machine(), "settings": {"jobs": args.jobs, "rate": args.rate,
                "repeat": args.repeat, "idle_seconds": args.idle_seconds,
                "concurrency": CONCURRENCY}, "targets": TARGETS, "results": rows}  # fmt: skip
    path.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
