"""Application Insights through ``azure-monitor-opentelemetry``: the distro
configures the global tracer and meter providers, and offload's spans and metrics
reach its exporter, which here posts to an ingestion endpoint the test runs on
127.0.0.1. The process refuses every connection that is not to the loopback,
so the test also proves nothing leaves the machine (live metrics, statsbeat and
Azure resource detection are off, as a set-up outside Azure should have them)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.servers import require

require("azure.monitor.opentelemetry")

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import ipaddress
    import os
    import socket

    refused = []
    _connect = socket.socket.connect


    def loopback_only(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host).is_loopback:
            refused.append(host)
            raise ConnectionRefusedError(f"not on this machine: {host}")
        return _connect(self, address)


    socket.socket.connect = loopback_only

    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import metrics, trace

    configure_azure_monitor(
        connection_string=os.environ["AI_CONNECTION_STRING"],
        enable_live_metrics=False,
        enable_performance_counters=False,
        disable_offline_storage=True,
        # the default rate-limited sampler decides anew for a remote parent, so a
        # worker could drop the runs of a trace its producer kept; a ratio is the
        # same decision from the trace id in every process
        sampling_ratio=1.0,
        logger_name="offload.test.azure",
    )

    from offload import App
    from offload.integrations.opentelemetry import OpenTelemetryMiddleware
    from offload.integrations.otel_metrics import OpenTelemetryMetrics
    from offload.testing import drain

    metrics_middleware = OpenTelemetryMetrics()
    app = App("memory://", middleware=[OpenTelemetryMiddleware(), metrics_middleware])


    @app.task(name="ai.ok", queue="ai")
    def ok(n: int) -> int:
        return n


    @app.task(name="ai.broken", queue="ai", max_attempts=1)
    def broken() -> None:
        raise RuntimeError("disk full")


    async def main():
        with trace.get_tracer("web").start_as_current_span("POST /orders"):
            await ok.enqueue_async(1)
            await broken.enqueue_async()
        await drain(app, ["ai"])
        await metrics_middleware.refresh(app)
        await app.close_async()


    asyncio.run(main())
    assert trace.get_tracer_provider().force_flush()
    assert metrics.get_meter_provider().force_flush()
    trace.get_tracer_provider().shutdown()
    metrics.get_meter_provider().shutdown()
    print("REFUSED", ",".join(sorted(set(refused))))
    """
)


class Ingestion(BaseHTTPRequestHandler):
    """Accepts telemetry as Application Insights' ingestion endpoint does."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode()
        envelopes = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]  # fmt: skip
        self.server.received.extend(envelopes)  # type: ignore[attr-defined]
        reply = json.dumps({"itemsReceived": len(envelopes), "itemsAccepted": len(envelopes),
                            "errors": []}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def ingestion() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _by_type(envelopes: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == kind]


def test_spans_and_metrics_reach_the_distros_exporter(
    ingestion: ThreadingHTTPServer, tmp_path: Path
) -> None:
    port = ingestion.server_address[1]
    env = {
        **os.environ,
        "AI_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        f"IngestionEndpoint=http://127.0.0.1:{port}/",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
        "OTEL_SERVICE_NAME": "offload-test",
    }
    script = tmp_path / "ai.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "REFUSED \n" in done.stdout, done.stdout  # nothing tried to leave the machine
    received: list[dict[str, Any]] = ingestion.received  # type: ignore[attr-defined]
    requests = {r["name"]: r for r in _by_type(received, "RequestData")}
    dependencies = {d["name"]: d for d in _by_type(received, "RemoteDependencyData")}
    # CONSUMER spans are requests in Application Insights, PRODUCER spans dependencies
    assert {"process ai.ok", "process ai.broken"} <= requests.keys()
    assert {"send ai.ok", "send ai.broken"} <= dependencies.keys()
    assert requests["process ai.ok"]["success"] is True
    assert requests["process ai.broken"]["success"] is False
    assert requests["process ai.ok"]["properties"]["offload.task"] == "ai.ok"
    operations = {e["tags"]["ai.operation.id"] for e in received if "ai.operation.id" in e["tags"]}
    trace_of = {e["data"]["baseData"]["name"]: e["tags"]["ai.operation.id"] for e in received
                if e["data"]["baseType"] in ("RequestData", "RemoteDependencyData")}  # fmt: skip
    assert trace_of["process ai.ok"] == trace_of["send ai.ok"] == trace_of["POST /orders"]
    assert operations
    metrics: dict[str, float] = {}
    for data in _by_type(received, "MetricData"):
        for metric in data["metrics"]:
            key = metric["name"] + "|" + data.get("properties", {}).get("outcome", "")
            metrics[key] = metrics.get(key, 0) + metric["value"]
    assert metrics["offload_jobs_enqueued|"] == 2
    assert metrics["offload_jobs_completed|succeeded"] == 1
    assert metrics["offload_jobs_completed|dead"] == 1
    assert "offload_job_duration_seconds|" in metrics
