"""Metrics through the OpenTelemetry metrics API, read back with the SDK's
in-memory reader: the same names and labels as the Prometheus exposition."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from offload import App
from offload.integrations.otel_metrics import OpenTelemetryMetrics
from offload.testing import drain

Points = dict[tuple[str, tuple[tuple[str, Any], ...]], Any]


def _points(reader: InMemoryMetricReader) -> Points:
    data = reader.get_metrics_data()
    assert data is not None
    found: Points = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "offload"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    found[key] = point
    return found


async def test_counts_outcomes_and_times_through_the_metrics_api() -> None:
    reader = InMemoryMetricReader()
    metrics = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]))
    app = App("memory://", middleware=[metrics])

    @app.task(name="ok", queue="q")
    def ok() -> None:
        return None

    @app.task(name="bad", queue="q", max_attempts=2, retry=[0.0])
    def bad() -> None:
        raise RuntimeError("no")

    await ok.enqueue_many_async([(), (), ()])
    await bad.enqueue_async()
    await ok.options(delay=3600).enqueue_async()
    await drain(app, ["q"])
    await drain(app, ["q"])  # the retry of ``bad``
    await metrics.refresh(app)
    p = _points(reader)
    ok_q = (("queue", "q"), ("task", "ok"))
    assert p["offload_jobs_enqueued", ok_q].value == 4
    assert p["offload_jobs_enqueued", (("queue", "q"), ("task", "bad"))].value == 1
    assert p["offload_jobs_completed", (("outcome", "succeeded"), *ok_q)].value == 3
    for outcome in ("failed", "dead"):
        key = ("offload_jobs_completed", (("outcome", outcome), ("queue", "q"), ("task", "bad")))
        assert p[key].value == 1
    assert p["offload_job_duration_seconds", ok_q].count == 3
    assert p["offload_job_wait_seconds", ok_q].count == 3
    assert p["offload_queue_jobs", (("queue", "q"), ("state", "scheduled"))].value == 1
    assert p["offload_queue_jobs", (("queue", "q"), ("state", "succeeded"))].value == 3
    assert p["offload_workers", ()].value == 0
    assert not any("job_id" in dict(attrs) or "tenant" in dict(attrs) for _, attrs in p)
    await app.close_async()


async def test_the_tenant_is_a_label_only_when_asked() -> None:
    reader = InMemoryMetricReader()
    metrics = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]), tenant_label=True)
    app = App("memory://", middleware=[metrics])

    @app.task(name="t")
    def t() -> None:
        return None

    await t.options(tenant="acme").enqueue_async()
    p = _points(reader)
    key = (("queue", "default"), ("task", "t"), ("tenant", "acme"))
    assert p["offload_jobs_enqueued", key].value == 1
    await app.close_async()


async def test_without_an_sdk_the_jobs_run_and_nothing_is_recorded() -> None:
    # the API's global provider is a proxy with no SDK behind it
    metrics = OpenTelemetryMetrics()
    app = App("memory://", middleware=[metrics])

    @app.task(name="quiet")
    def quiet() -> str:
        return "ok"

    job = await quiet.enqueue_async()
    await drain(app)
    assert (await app.get_job_async(job.id)).result == "ok"
    assert not metrics.active()
    assert metrics._started == {}
    await app.close_async()
