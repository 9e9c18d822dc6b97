"""Traces with the OpenTelemetry SDK: the enqueue span, one span per attempt as
its child, errors recorded, bulk enqueues counted; across two processes on
SQLite and Redis, the trace crosses with the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from offload import App, JobContext, State
from offload.integrations.opentelemetry import META_KEY, OpenTelemetryMiddleware
from offload.testing import drain, eventually
from tests.conftest import BACKENDS


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is kind]


async def test_a_run_is_a_child_of_the_span_that_enqueued_it(
    exporter: InMemorySpanExporter,
) -> None:
    provider = _provider(exporter)
    app = App("memory://", middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="mail.send", queue="mail")
    async def send(to: str) -> None:
        # a span the task opens itself nests under the run's span
        with provider.get_tracer("t").start_as_current_span("smtp"):
            pass

    with provider.get_tracer("web").start_as_current_span("POST /signup") as request:
        job = await send.options(tenant="acme").enqueue_async("a@b.c")
    await drain(app, ["mail"])
    spans = exporter.get_finished_spans()
    [producer] = _by_kind(spans, SpanKind.PRODUCER)
    [consumer] = _by_kind(spans, SpanKind.CONSUMER)
    [smtp] = [s for s in spans if s.name == "smtp"]
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert consumer.context.trace_id == request.get_span_context().trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert smtp.parent is not None
    assert smtp.parent.span_id == consumer.context.span_id
    assert (producer.name, consumer.name) == ("send mail.send", "process mail.send")
    assert dict(consumer.attributes or {}).items() >= {
        "messaging.system": "offload", "messaging.operation.type": "process",
        "messaging.destination.name": "mail", "messaging.message.id": job.id,
        "offload.task": "mail.send", "offload.tenant": "acme", "offload.attempt": 1,
        "offload.outcome": "succeeded",
    }.items()  # fmt: skip
    assert (producer.attributes or {})["messaging.message.id"] == job.id
    assert consumer.status.status_code is StatusCode.UNSET
    stored = await app.get_job_async(job.id)
    assert "traceparent" in stored.meta[META_KEY]
    await app.close_async()


async def test_each_attempt_is_its_own_span_and_failures_are_errors(
    exporter: InMemorySpanExporter,
) -> None:
    app = App("memory://", middleware=[OpenTelemetryMiddleware(_provider(exporter))])

    @app.task(name="flaky", max_attempts=2, retry=[0.0])
    def flaky(ctx: JobContext) -> None:
        raise ValueError(f"attempt {ctx.attempt}")

    job = await flaky.enqueue_async()

    async def ended() -> bool:
        await drain(app)
        return (await app.get_job_async(job.id)).state is State.DEAD

    await eventually(ended, timeout=20)
    spans = exporter.get_finished_spans()
    [producer] = _by_kind(spans, SpanKind.PRODUCER)
    runs = sorted(_by_kind(spans, SpanKind.CONSUMER), key=lambda s: s.start_time or 0)
    assert [(r.attributes or {})["offload.attempt"] for r in runs] == [1, 2]
    assert [(r.attributes or {})["offload.outcome"] for r in runs] == ["failed", "dead"]
    assert len({r.context.span_id for r in runs}) == 2
    for run in runs:
        assert run.parent is not None
        assert run.parent.span_id == producer.context.span_id
        assert run.status.status_code is StatusCode.ERROR
        [event] = run.events
        assert event.name == "exception"
        assert (event.attributes or {})["exception.type"] == "ValueError"
    await app.close_async()


async def test_a_bulk_enqueue_is_one_span_with_its_count(exporter: InMemorySpanExporter) -> None:
    app = App("memory://", middleware=[OpenTelemetryMiddleware(_provider(exporter))])

    @app.task(name="thumb")
    def thumb(n: int) -> None:
        return None

    jobs = await thumb.enqueue_many_async([(n,) for n in range(5)])
    await drain(app)
    spans = exporter.get_finished_spans()
    [producer] = _by_kind(spans, SpanKind.PRODUCER)
    assert (producer.attributes or {})["messaging.batch.message_count"] == 5
    runs = _by_kind(spans, SpanKind.CONSUMER)
    assert sorted((r.attributes or {})["messaging.message.id"] for r in runs) == sorted(
        j.id for j in jobs
    )
    assert {r.parent.span_id for r in runs if r.parent} == {producer.context.span_id}
    await app.close_async()


async def test_a_failed_enqueue_ends_its_span_in_error(exporter: InMemorySpanExporter) -> None:
    app = App("memory://", middleware=[OpenTelemetryMiddleware(_provider(exporter))])

    @app.task(name="dup")
    def dup() -> None:
        return None

    backend = await app.backend()
    await backend.close()

    async def broken(jobs: Any) -> Any:
        raise ConnectionError("backend down")

    backend.job_enqueue_many = broken  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await dup.enqueue_async()
    [producer] = exporter.get_finished_spans()
    assert producer.status.status_code is StatusCode.ERROR
    assert producer.events[0].name == "exception"


async def test_without_an_sdk_nothing_is_added_to_the_job() -> None:
    app = App("memory://", middleware=[OpenTelemetryMiddleware()])

    @app.task(name="quiet")
    def quiet() -> str:
        return "ok"

    job = await quiet.enqueue_async()
    assert META_KEY not in (await app.get_job_async(job.id)).meta
    await drain(app)
    assert (await app.get_job_async(job.id)).result == "ok"
    await app.close_async()


# across processes -------------------------------------------------------------------

APP_SOURCE = textwrap.dedent(
    """
    import json
    import os

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from offload import App
    from offload.integrations.opentelemetry import OpenTelemetryMiddleware


    class FileExporter(SpanExporter):
        '''One JSON object per finished span, appended to a file the test reads.'''

        def __init__(self, path):
            self.path = path

        def export(self, spans):
            with open(self.path, "a") as out:
                for span in spans:
                    out.write(json.dumps(json.loads(span.to_json())) + "\\n")
            return SpanExportResult.SUCCESS


    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter(os.environ["SPANS_FILE"])))
    app = App(os.environ["OFFLOAD_BACKEND_URL"], middleware=[OpenTelemetryMiddleware(provider)])


    @app.task(name="otel.ok")
    def ok(n: int) -> int:
        return n


    @app.task(name="otel.broken", max_attempts=1)
    def broken() -> None:
        raise RuntimeError("disk full")
    """
)


def _hex(value: int) -> str:
    return f"0x{value:032x}" if value > 2**64 else f"0x{value:016x}"


@pytest.mark.parametrize("backend_name", ["sqlite", "redis"])
async def test_a_trace_crosses_into_a_worker_process(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest,
    exporter: InMemorySpanExporter,
) -> None:  # fmt: skip
    url = BACKENDS[backend_name](tmp_path, request)
    provider = _provider(exporter)
    app = App(url, middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="otel.ok")
    def ok(n: int) -> int:
        return n

    @app.task(name="otel.broken", max_attempts=1)
    def broken() -> None:
        return None

    with provider.get_tracer("web").start_as_current_span("POST /orders", kind=SpanKind.SERVER):
        good = await ok.enqueue_async(7)
        bad = await broken.enqueue_async()
    await app.close_async()
    (tmp_path / "otelapp.py").write_text(APP_SOURCE)
    spans_file = tmp_path / "spans.jsonl"
    env = {**os.environ, "OFFLOAD_BACKEND_URL": url, "SPANS_FILE": str(spans_file),
           "PYTHONPATH": str(tmp_path)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "offload.cli", "worker", "otelapp:app", "--burst"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    remote = [json.loads(line) for line in spans_file.read_text().splitlines()]
    runs = {s["attributes"]["messaging.message.id"]: s for s in remote}
    producers = {
        (s.attributes or {})["messaging.message.id"]: s
        for s in _by_kind(exporter.get_finished_spans(), SpanKind.PRODUCER)
    }
    for job in (good, bad):
        run, producer = runs[job.id], producers[job.id]
        assert run["kind"] == "SpanKind.CONSUMER"
        assert run["context"]["trace_id"] == _hex(producer.context.trace_id)
        assert run["parent_id"] == f"0x{producer.context.span_id:016x}"
    assert runs[good.id]["status"]["status_code"] == "UNSET"
    assert runs[bad.id]["status"]["status_code"] == "ERROR"
    assert runs[bad.id]["events"][0]["attributes"]["exception.type"] == "RuntimeError"
