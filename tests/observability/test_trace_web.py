"""The whole path in one trace: a web request to offload's own HTTP API,
instrumented by ``opentelemetry-instrumentation-asgi`` as any Starlette app would
be, enqueues (PRODUCER); ``offload worker`` in another process runs the jobs
(CONSUMER), and a failed attempt is an error in that same trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiTracing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from offload import App
from offload.integrations.opentelemetry import OpenTelemetryMiddleware
from offload.web import create_app
from tests.observability.test_tracing import APP_SOURCE


def _hex_trace(value: int) -> str:
    return f"0x{value:032x}"


def _hex_span(value: int) -> str:
    return f"0x{value:016x}"


async def test_request_enqueue_and_run_in_a_worker_process_are_one_trace(
    tmp_path: Path,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    url = f"sqlite:///{tmp_path / 'web.db'}"
    app = App(url, middleware=[OpenTelemetryMiddleware(provider)])

    @app.task(name="otel.ok")
    def ok(n: int) -> int:
        return n

    @app.task(name="otel.broken", max_attempts=1)
    def broken() -> None:
        return None

    web = AsgiTracing(create_app(app, dashboard=False), tracer_provider=provider)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        good = await client.post("/api/v1/jobs", json={"task": "otel.ok", "args": {"n": 7}})
        bad = await client.post("/api/v1/jobs", json={"task": "otel.broken"})
    assert (good.status_code, bad.status_code) == (202, 202), (good.text, bad.text)
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

    local = exporter.get_finished_spans()
    servers = [s for s in local if s.kind is SpanKind.SERVER]
    producers = {(s.attributes or {})["messaging.message.id"]: s
                 for s in local if s.kind is SpanKind.PRODUCER}  # fmt: skip
    runs = {s["attributes"]["messaging.message.id"]: s
            for s in map(json.loads, spans_file.read_text().splitlines())}  # fmt: skip
    assert len(servers) == 2
    for response, server in zip((good, bad), servers, strict=True):
        job_id = response.json()["id"]
        producer, run = producers[job_id], runs[job_id]
        # request → enqueue: the PRODUCER span is the child of the server span
        assert producer.parent is not None
        assert producer.parent.span_id == server.context.span_id
        assert producer.context.trace_id == server.context.trace_id
        # enqueue → run, in the worker process
        assert run["kind"] == "SpanKind.CONSUMER"
        assert run["context"]["trace_id"] == _hex_trace(server.context.trace_id)
        assert run["parent_id"] == _hex_span(producer.context.span_id)
    assert [s.name for s in servers] == ["POST /api/v1/jobs"] * 2
    assert runs[good.json()["id"]]["status"]["status_code"] == "UNSET"
    failed = runs[bad.json()["id"]]
    assert failed["status"]["status_code"] == "ERROR"
    assert failed["attributes"]["offload.outcome"] == "dead"
    assert failed["events"][0]["attributes"]["exception.type"] == "RuntimeError"
