"""Drain throughput and CPU cost per job with the observability middleware on and off.

One process, a no-op task: each round seeds ``--jobs`` jobs (untimed) and times a
burst worker draining them, for every mode in turn, in a fresh random order each
round so that no mode always runs first or after the same neighbour; the modes
share the machine's noise. Two figures per drain: wall-clock jobs/s, and the
process's CPU time per job, which other programs on a shared machine disturb far
less than the wall clock (it still counts what the event loop itself spends).
Medians are reported with the interquartile range as the spread, and the cost of a
mode is its median CPU time per job minus that of no middleware.

Modes: no middleware; ``OpenTelemetryMiddleware`` and ``OpenTelemetryMetrics``
with no SDK (what a user who installed the extra but configured nothing pays);
traces with the SDK and a batch processor whose exporter drops the spans (the cost
of making spans, not of shipping them); metrics with the SDK and an in-memory
reader; ``PrometheusMetrics``; traces with the SDK plus Prometheus.

    .venv/bin/python bench/observability.py --jobs 5000 --rounds 9 --out bench/results/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from offload import App, Middleware
from offload.integrations.opentelemetry import OpenTelemetryMiddleware
from offload.integrations.otel_metrics import OpenTelemetryMetrics
from offload.integrations.prometheus import PrometheusMetrics
from offload.worker import Worker


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _tracer() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


def _meter() -> MeterProvider:
    return MeterProvider(metric_readers=[InMemoryMetricReader()])


MODES: dict[str, Callable[[], list[Middleware]]] = {
    "none": list,
    "otel traces+metrics, no SDK": lambda: [OpenTelemetryMiddleware(), OpenTelemetryMetrics()],
    "otel traces + SDK": lambda: [OpenTelemetryMiddleware(_tracer())],
    "otel metrics + SDK": lambda: [OpenTelemetryMetrics(_meter())],
    "prometheus": lambda: [PrometheusMetrics()],
    "otel traces + SDK + prometheus": lambda: [
        OpenTelemetryMiddleware(_tracer()), PrometheusMetrics(),
    ],
}  # fmt: skip


def _url(backend: str, workdir: Path) -> str:
    if backend == "memory":
        return "memory://"
    return f"sqlite:///{workdir / f'{time.time_ns()}.db'}"


async def one_round(mode: str, jobs: int, backend: str, workdir: Path) -> tuple[float, float]:
    """(jobs per second, CPU microseconds per job) of one drain."""
    app = App(_url(backend, workdir), middleware=MODES[mode]())

    @app.task(name="bench.noop", max_attempts=1)
    async def noop() -> None:
        return None

    for start in range(0, jobs, 1000):
        await noop.enqueue_many_async([()] * min(1000, jobs - start))
    worker = Worker(app, ["default"], concurrency=50, burst=True, handle_signals=False,
                    poll_interval=0.05)  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    await worker.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await app.close_async()
    return jobs / wall, cpu / jobs * 1e6


def _spread(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": round(median, 1), "q1": round(q1, 1), "q3": round(q3, 1),
            "min": round(min(values), 1), "max": round(max(values), 1)}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, object]:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpus: dict[str, list[float]] = {mode: [] for mode in MODES}
    order = list(MODES)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="offload-bench-obs-") as tmp:
        await one_round("none", min(args.jobs, 1000), args.backend, Path(tmp))  # warm-up
        for _ in range(args.rounds):
            rng.shuffle(order)
            for mode in order:
                rate, cpu = await one_round(mode, args.jobs, args.backend, Path(tmp))
                rates[mode].append(rate)
                cpus[mode].append(cpu)
    base = statistics.median(cpus["none"])
    modes = {
        mode: {
            "jobs_per_s": _spread(rates[mode]),
            "cpu_us_per_job": _spread(cpus[mode]),
            "cost_us_per_job": round(statistics.median(cpus[mode]) - base, 1),
            "cost_vs_none": round(statistics.median(cpus[mode]) / base - 1, 3),
        }
        for mode in MODES
    }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": args.backend, "jobs": args.jobs, "rounds": args.rounds,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "modes": modes,
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    result = asyncio.run(main(options))
    text = json.dumps(result, indent=2)
    if options.out:
        options.out.write_text(text + "\n")
    print(text, file=sys.stdout)
