"""Prometheus metrics of jobs and queues (``pip install 'offload[prometheus]'``).

Counters and histograms are fed by middleware hooks in the process where the
event happens (enqueue in the producer, outcomes in the worker); the queue and
worker gauges are read from the backend at scrape time instead, so every worker
and web process reports the same, right depth whoever did the work. Labels are
bounded: task, queue, outcome and state; never a job id, and the tenant only when
asked for (``tenant_label=True``), since tenants may be unbounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from offload.app import App
from offload.integrations._job_metrics import BUCKETS, JobMetrics
from offload.lifecycle import State
from offload.middleware import MiddlewareChain

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _BackendGauges(Collector):
    """Serves the last counts ``refresh`` read, so a scrape never blocks on I/O
    inside prometheus-client's synchronous collection."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, State], int] = {}
        self.workers: int | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "offload_queue_jobs", "Jobs per queue and state, as the backend counts them.",
            labels=["queue", "state"],
        )  # fmt: skip
        queues = sorted({q for q, _ in self.counts})
        for queue in queues:
            for state in State:
                jobs.add_metric([queue, state.value], self.counts.get((queue, state), 0))
        yield jobs
        workers = GaugeMetricFamily("offload_workers", "Workers alive in the registry.")
        if self.workers is not None:
            workers.add_metric([], self.workers)
        yield workers


class PrometheusMetrics(JobMetrics):
    """Add to the app's middleware, or call ``install(app)``; serve with
    ``offload worker --metrics-port`` or ``offload web`` (``/metrics``)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, tenant_label: bool = False,
        buckets: Sequence[float] = BUCKETS,
    ) -> None:  # fmt: skip
        super().__init__(tenant_label=tenant_label)
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = list(self.label_names)
        r = self.registry
        self.enqueued = Counter("offload_jobs_enqueued", "Jobs accepted by enqueue.",
                                labels, registry=r)  # fmt: skip
        self.completed = Counter("offload_jobs_completed", "Attempts ended, by outcome.",
                                 [*labels, "outcome"], registry=r)  # fmt: skip
        self.duration = Histogram("offload_job_duration_seconds", "Run time of an attempt.",
                                  labels, buckets=buckets, registry=r)  # fmt: skip
        self.wait = Histogram("offload_job_wait_seconds", "From due time to start of an attempt.",
                              labels, buckets=buckets, registry=r)  # fmt: skip
        self.gauges = _BackendGauges()
        r.register(self.gauges)

    # recording --------------------------------------------------------------------

    def record_enqueued(self, labels: tuple[str, ...]) -> None:
        self.enqueued.labels(*labels).inc()

    def record_wait(self, labels: tuple[str, ...], seconds: float) -> None:
        self.wait.labels(*labels).observe(seconds)

    def record_duration(self, labels: tuple[str, ...], seconds: float) -> None:
        self.duration.labels(*labels).observe(seconds)

    def record_completed(self, labels: tuple[str, ...], outcome: str) -> None:
        self.completed.labels(*labels, outcome).inc()

    # exposition -----------------------------------------------------------------

    async def refresh(self, app: App) -> None:
        """Read the gauges from the backend; call before each exposition."""
        backend = await app.backend()
        self.gauges.counts = dict(await backend.job_counts())
        self.gauges.workers = len(await backend.worker_list())

    async def exposition(self, app: App) -> bytes:
        """The text format, with gauges fresh from the backend."""
        await self.refresh(app)
        return generate_latest(self.registry)


def find(app: App) -> PrometheusMetrics | None:
    for middleware in app.middleware.middleware:
        if isinstance(middleware, PrometheusMetrics):
            return middleware
    return None


def install(app: App, metrics: PrometheusMetrics | None = None) -> PrometheusMetrics:
    """The app's metrics middleware, added (last) when it has none yet; what
    ``--metrics-port`` and ``offload web`` use, so an app that configured its own
    (another registry, tenant labels) keeps it."""
    found = find(app)
    if found is not None:
        return found
    metrics = metrics or PrometheusMetrics()
    app.middleware = MiddlewareChain([*app.middleware.middleware, metrics])
    return metrics


__all__ = ["BUCKETS", "CONTENT_TYPE", "PrometheusMetrics", "find", "install"]
