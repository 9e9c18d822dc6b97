"""Drain throughput with the observability middleware on and off.

One process, SQLite, a no-op task: each round seeds ``--jobs`` jobs (untimed) and
times a burst worker draining them, for every mode in turn, so the modes share
the machine's noise; the median of the rounds is reported. Modes: no middleware;
``OpenTelemetryMiddleware`` with no SDK (what a user who installed the extra but
configured nothing pays); with the SDK and a batch processor whose exporter drops
the spans (the cost of making spans, not of shipping them); ``PrometheusMetrics``;
both with the SDK.

    .venv/bin/python bench/observability.py --jobs 5000 --rounds 5 --out bench/results/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from offload import App, Middleware
from offload.integrations.opentelemetry import OpenTelemetryMiddleware
from offload.integrations.prometheus import PrometheusMetrics
from offload.worker import Worker


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _sdk() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


MODES: dict[str, Callable[[], list[Middleware]]] = {
    "none": list,
    "otel, no SDK": lambda: [OpenTelemetryMiddleware()],
    "otel + SDK": lambda: [OpenTelemetryMiddleware(_sdk())],
    "prometheus": lambda: [PrometheusMetrics()],
    "otel + SDK + prometheus": lambda: [OpenTelemetryMiddleware(_sdk()), PrometheusMetrics()],
}


async def one_round(mode: str, jobs: int, workdir: Path) -> float:
    db = workdir / f"{mode.replace(' ', '').replace(',', '').replace('+', '_')}-{time.time_ns()}.db"
    app = App(f"sqlite:///{db}", middleware=MODES[mode]())

    @app.task(name="bench.noop", max_attempts=1)
    async def noop() -> None:
        return None

    for start in range(0, jobs, 1000):
        await noop.enqueue_many_async([()] * min(1000, jobs - start))
    worker = Worker(app, ["default"], concurrency=50, burst=True, handle_signals=False,
                    poll_interval=0.05)  # fmt: skip
    began = time.perf_counter()
    await worker.run()
    seconds = time.perf_counter() - began
    await app.close_async()
    return jobs / seconds


async def main(args: argparse.Namespace) -> dict[str, object]:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="offload-bench-obs-") as tmp:
        for _ in range(args.rounds):
            for mode in MODES:
                rates[mode].append(await one_round(mode, args.jobs, Path(tmp)))
    base = statistics.median(rates["none"])
    summary = {
        mode: {"jobs_per_s": round(statistics.median(r)), "vs_none": round(
            statistics.median(r) / base - 1, 3), "rounds": [round(x) for x in r]}
        for mode, r in rates.items()
    }  # fmt: skip
    return {"backend": "sqlite", "jobs": args.jobs, "rounds": args.rounds, "modes": summary}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    result = asyncio.run(main(options))
    text = json.dumps(result, indent=2)
    if options.out:
        options.out.write_text(text + "\n")
    print(text, file=sys.stdout)
