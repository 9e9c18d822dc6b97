"""Job and queue metrics through the OpenTelemetry metrics API
(``pip install 'offload[otel]'``), for applications whose metrics go to an
OpenTelemetry pipeline (an OTLP collector, Azure Monitor) rather than a
Prometheus scrape.

The instruments are those of ``PrometheusMetrics``, with the same names and
labels (attributes), recorded from the same hooks, so one Grafana dashboard or
one alert reads either. The meter provider is the application's: with none
configured the API hands out no-op instruments and recording costs a method call.

The queue and worker gauges are observable: they report the counts the last
``await metrics.refresh(app)`` read from the backend (the SDK calls gauge
callbacks on its own thread, where the backend's connections cannot be used).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from offload.app import App
from offload.integrations._job_metrics import BUCKETS, JobMetrics
from offload.lifecycle import State

try:  # what the global meter provider is until an SDK (or a distro) sets one
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    _NO_SDK: tuple[type, ...] = (metrics.NoOpMeterProvider, _ProxyMeterProvider)
except ImportError:  # pragma: no cover - another layout of the API
    _NO_SDK = (metrics.NoOpMeterProvider,)


def _offload_version() -> str:
    try:
        return version("offload")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


class OpenTelemetryMetrics(JobMetrics):
    """``App(..., middleware=[OpenTelemetryMetrics()])``; ``meter_provider``
    defaults to the global one, set by the SDK or a distro such as
    ``azure-monitor-opentelemetry``."""

    def __init__(
        self, meter_provider: metrics.MeterProvider | None = None, *, tenant_label: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(tenant_label=tenant_label)
        meter = metrics.get_meter("offload", _offload_version(), meter_provider=meter_provider)
        self.enqueued = meter.create_counter(
            "offload_jobs_enqueued", unit="{job}", description="Jobs accepted by enqueue."
        )
        self.completed = meter.create_counter(
            "offload_jobs_completed", unit="{attempt}", description="Attempts ended, by outcome."
        )
        self.duration = meter.create_histogram(
            "offload_job_duration_seconds", unit="s", description="Run time of an attempt.",
            explicit_bucket_boundaries_advisory=list(BUCKETS),
        )  # fmt: skip
        self.wait = meter.create_histogram(
            "offload_job_wait_seconds", unit="s",
            description="From due time to start of an attempt.",
            explicit_bucket_boundaries_advisory=list(BUCKETS),
        )  # fmt: skip
        meter.create_observable_gauge(
            "offload_queue_jobs", [self._observe_queues], unit="{job}",
            description="Jobs per queue and state, as the backend counts them.",
        )  # fmt: skip
        meter.create_observable_gauge(
            "offload_workers", [self._observe_workers], unit="{worker}",
            description="Workers alive in the registry.",
        )  # fmt: skip
        self.counts: dict[tuple[str, State], int] = {}
        self.workers: int | None = None
        self._live = meter_provider is not None and not isinstance(meter_provider, _NO_SDK)

    def active(self) -> bool:
        """Whether an SDK records. Without one the instruments are no-ops, so
        the hooks skip even building attributes. Asked again until an SDK is set,
        since an application may configure it after building its ``App``."""
        if not self._live:
            self._live = not isinstance(metrics.get_meter_provider(), _NO_SDK)
        return self._live

    def _attributes(self, labels: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.label_names, labels, strict=True))

    # recording --------------------------------------------------------------------

    def record_enqueued(self, labels: tuple[str, ...]) -> None:
        self.enqueued.add(1, self._attributes(labels))

    def record_wait(self, labels: tuple[str, ...], seconds: float) -> None:
        self.wait.record(seconds, self._attributes(labels))

    def record_duration(self, labels: tuple[str, ...], seconds: float) -> None:
        self.duration.record(seconds, self._attributes(labels))

    def record_completed(self, labels: tuple[str, ...], outcome: str) -> None:
        self.completed.add(1, {**self._attributes(labels), "outcome": outcome})

    # gauges -----------------------------------------------------------------------

    async def refresh(self, app: App) -> None:
        """Read the queue and worker counts from the backend for the gauges."""
        backend = await app.backend()
        self.counts = dict(await backend.job_counts())
        self.workers = len(await backend.worker_list())

    def _observe_queues(self, options: CallbackOptions) -> Iterable[Observation]:
        for queue in sorted({q for q, _ in self.counts}):
            for state in State:
                count = self.counts.get((queue, state), 0)
                yield Observation(count, {"queue": queue, "state": state.value})

    def _observe_workers(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.workers is not None:
            yield Observation(self.workers)


__all__ = ["OpenTelemetryMetrics"]
