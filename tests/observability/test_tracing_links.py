"""Jobs started by something other than an enqueue call link to what caused
them: a batch's continuations to the span that created the batch, a schedule's
firing to the scheduler's span of that firing."""

from __future__ import annotations

from datetime import timedelta

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from offload import App
from offload.integrations.opentelemetry import LINKS_KEY, OpenTelemetryMiddleware
from offload.testing import drain, eventually
from offload.worker.services.scheduler import Scheduler


def _traced() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def _linked(span: ReadableSpan) -> set[tuple[int, int]]:
    return {(link.context.trace_id, link.context.span_id) for link in span.links}


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_a_continuation_links_to_the_span_that_created_its_batch() -> None:
    exporter, provider = _traced()
    app = App("memory://", middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="report.part")
    def part(n: int) -> int:
        return n

    @app.task(name="report.merge")
    def merge() -> None:
        return None

    with provider.get_tracer("web").start_as_current_span("POST /reports") as request:
        batch = await app.batch_async([part.prepare(n) for n in range(3)], then=[merge.prepare()])
    cause = (request.get_span_context().trace_id, request.get_span_context().span_id)

    async def merged() -> list[ReadableSpan]:
        await drain(app)
        return _named(exporter, "process report.merge")

    [run] = await eventually(merged, timeout=20)
    [send] = _named(exporter, "send report.merge")
    assert send.kind is SpanKind.PRODUCER
    assert cause in _linked(send)
    assert cause in _linked(run)
    # the continuation is a trace of its own, not glued to whoever settled the batch
    assert run.parent is not None
    assert run.parent.span_id == send.context.span_id
    stored = (await app.get_batch_async(batch.id)).continuation_ids
    assert len(stored) == 1
    job = await app.get_job_async(stored[0])
    assert len(job.meta[LINKS_KEY]) == 1
    # the batch's own jobs are children of the request, with no links
    parts = _named(exporter, "process report.part")
    assert len(parts) == 3
    assert all(not p.links for p in parts)
    await app.close_async()


async def test_a_batch_created_outside_any_span_has_nothing_to_link() -> None:
    exporter, provider = _traced()
    app = App("memory://", middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="solo")
    def solo() -> None:
        return None

    await app.batch_async([solo.prepare()], then=[solo.prepare()])

    async def both_ran() -> list[ReadableSpan]:
        await drain(app)
        runs = _named(exporter, "process solo")
        return runs if len(runs) == 2 else []

    runs = await eventually(both_ran, timeout=20)
    assert all(not r.links for r in runs)
    await app.close_async()


async def test_a_schedule_firing_links_to_the_schedulers_firing_span() -> None:
    exporter, provider = _traced()
    app = App("memory://", middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="nightly")
    def nightly() -> None:
        return None

    await app.schedule_async("nightly", nightly, "0 0 3 * * *")
    backend = await app.backend()
    schedule = await app.get_schedule_async("nightly")
    assert schedule.next_run_at is not None
    fired = await Scheduler(app, backend, 1).fire_due(schedule.next_run_at + timedelta(seconds=1))
    assert fired == 1
    await drain(app)
    [firing] = _named(exporter, "fire nightly")
    [send] = _named(exporter, "send nightly")
    [run] = _named(exporter, "process nightly")
    cause = (firing.context.trace_id, firing.context.span_id)
    assert firing.kind is SpanKind.INTERNAL
    assert firing.parent is None
    assert (firing.attributes or {})["offload.schedule"] == "nightly"
    assert (firing.attributes or {})["offload.firing"] == schedule.next_run_at.isoformat()
    assert cause in _linked(send)
    assert cause in _linked(run)
    assert run.parent is not None
    assert run.parent.span_id == send.context.span_id
    assert (run.attributes or {})["offload.schedule"] == "nightly"
    await app.close_async()
