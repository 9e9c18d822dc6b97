"""Metrics: the middleware's counters in-process, the web routes' auth, and a real
Prometheus server scraping a running worker and web in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from offload import App, State
from offload.integrations.prometheus import PrometheusMetrics, install
from offload.testing import drain, eventually
from offload.web import create_app
from tests.servers import free_port, port_open
from tests.servers.prometheus import Prometheus, Target, prometheus


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


async def test_counts_enqueues_outcomes_and_reads_depth_from_the_backend() -> None:
    metrics = PrometheusMetrics()
    app = App("memory://", middleware=[metrics])

    @app.task(name="ok", queue="q")
    def ok() -> None:
        return None

    @app.task(name="bad", queue="q", max_attempts=1)
    def bad() -> None:
        raise RuntimeError("no")

    await ok.enqueue_many_async([(), (), ()])
    await bad.enqueue_async()
    await ok.options(delay=3600).enqueue_async()
    await drain(app, ["q"])
    s = _samples(await metrics.exposition(app))
    assert s["offload_jobs_enqueued_total", (("queue", "q"), ("task", "ok"))] == 4
    assert s["offload_jobs_completed_total", (("outcome", "succeeded"), ("queue", "q"),
                                              ("task", "ok"))] == 3  # fmt: skip
    assert s["offload_jobs_completed_total", (("outcome", "dead"), ("queue", "q"),
                                              ("task", "bad"))] == 1  # fmt: skip
    assert s["offload_job_duration_seconds_count", (("queue", "q"), ("task", "ok"))] == 3
    assert s["offload_job_wait_seconds_count", (("queue", "q"), ("task", "ok"))] == 3
    assert s["offload_queue_jobs", (("queue", "q"), ("state", "scheduled"))] == 1
    assert s["offload_queue_jobs", (("queue", "q"), ("state", "succeeded"))] == 3
    assert s["offload_workers", ()] == 0
    assert not any("job_id" in dict(labels) for _, labels in s)
    await app.close_async()


async def test_install_keeps_the_apps_own_metrics() -> None:
    mine = PrometheusMetrics(tenant_label=True)
    app = App("memory://", middleware=[mine])
    assert install(app) is mine
    bare = App("memory://")
    added = install(bare)
    assert install(bare) is added
    assert bare.middleware.has("after_execute")


async def test_web_metrics_need_an_admin_and_healthz_needs_nothing() -> None:
    app = App("memory://")
    web = create_app(app, tokens={"root": "*", "t1": "acme"})
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 401
        tenant = await client.get("/metrics", headers={"Authorization": "Bearer t1"})
        assert tenant.status_code == 403
        admin = await client.get("/metrics", headers={"Authorization": "Bearer root"})
        assert admin.status_code == 200
        assert b"offload_queue_jobs" in admin.content
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
    await app.close_async()


async def test_healthz_says_when_the_backend_does_not_answer() -> None:
    # a port nothing listens on: the backend cannot be reached
    app = App(f"redis://127.0.0.1:{free_port()}/0")
    web = create_app(app)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        health = await client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"


# a real Prometheus ------------------------------------------------------------------

APP_SOURCE = textwrap.dedent(
    """
    import os

    from offload import App

    app = App(os.environ["OFFLOAD_BACKEND_URL"])


    @app.task(name="prom.ok")
    def ok(n: int) -> int:
        return n


    @app.task(name="prom.dead", max_attempts=1)
    def dead(n: int) -> None:
        raise RuntimeError("gone")
    """
)


class Processes:
    """Subprocesses of one test, stopped at its end whatever happens."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.cwd / f"{args[0]}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "offload.cli", *args], cwd=self.cwd,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    env = {**os.environ, "OFFLOAD_BACKEND_URL": f"sqlite:///{tmp_path / 'prom.db'}",
           "PYTHONPATH": str(tmp_path)}  # fmt: skip
    (tmp_path / "promapp.py").write_text(APP_SOURCE)
    procs = Processes(tmp_path, env)
    yield procs
    procs.stop()


def _value(server: Prometheus, promql: str) -> dict[str, float]:
    return {r["metric"].get("outcome", r["metric"].get("state", "")): float(r["value"][1])
            for r in server.query(promql)}  # fmt: skip


async def test_prometheus_scrapes_a_worker_and_web(processes: Processes, tmp_path: Path) -> None:
    worker_port, web_port = free_port(), free_port()
    processes.start("worker", "promapp:app", "--metrics-port", str(worker_port))
    processes.start("web", "promapp:app", "--port", str(web_port), "--token", "scrape=*")
    app = App(processes.env["OFFLOAD_BACKEND_URL"])

    @app.task(name="prom.ok")
    def ok(n: int) -> None: ...

    @app.task(name="prom.dead", max_attempts=1)
    def dead(n: int) -> None: ...

    await ok.enqueue_many_async([(n,) for n in range(40)])
    await dead.enqueue_many_async([(n,) for n in range(10)])

    async def all_ended() -> bool:
        counts = await (await app.backend()).job_counts()
        return counts.get(("default", State.SUCCEEDED), 0) + counts.get(
            ("default", State.DEAD), 0) == 50  # fmt: skip

    await eventually(all_ended, timeout=60, interval=0.2)
    await eventually(_listening(web_port), timeout=30, interval=0.1)
    targets = [Target("worker", f"127.0.0.1:{worker_port}"),
               Target("web", f"127.0.0.1:{web_port}", token="scrape")]  # fmt: skip
    with prometheus(targets, tmp_path) as server:
        completed = 'sum by (outcome) (offload_jobs_completed_total{job="worker"})'

        async def scraped() -> dict[str, float] | None:
            found = _value(server, completed)
            return found if found.get("succeeded") == 40 and found.get("dead") == 10 else None

        assert await eventually(scraped, timeout=30, interval=0.2) == {
            "succeeded": 40.0, "dead": 10.0,
        }  # fmt: skip
        cli = subprocess.run(
            [sys.executable, "-m", "offload.cli", "queues", "--json"], cwd=tmp_path,
            env=processes.env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        expected = {s: float(n) for s, n in json.loads(cli.stdout)["default"].items()}
        for job in ("web", "worker"):
            # Each target is scraped on its own schedule (and a first scrape of
            # the web may run past the 1 s scrape timeout on a busy machine):
            # the worker's counters arriving says nothing about the web's gauges.
            query = f'offload_queue_jobs{{job="{job}",queue="default"}}'

            async def depth(query: str = query) -> dict[str, float] | None:
                found = _value(server, query)
                return found if found == expected else None

            assert await eventually(depth, timeout=30, interval=0.2) == expected, job
        assert _value(server, 'offload_workers{job="web"}') == {"": 1.0}
        assert server.targets_up() == {"worker": "up", "web": "up"}
    async with httpx.AsyncClient() as client:
        health = await client.get(f"http://127.0.0.1:{worker_port}/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        missing = await client.get(f"http://127.0.0.1:{worker_port}/nothing")
        assert missing.status_code == 404
    await app.close_async()


def _listening(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return port_open("127.0.0.1", port)

    return check


def test_the_grafana_dashboard_uses_only_exported_metrics() -> None:
    import re

    dashboard = json.loads((Path(__file__).parents[2] / "docs/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"offload_\w+", e)}
    metrics = PrometheusMetrics()
    exported = {s.name for family in metrics.registry.collect() for s in family.samples}
    exported |= {f"{f.name}_bucket" for f in metrics.registry.collect() if f.type == "histogram"}
    exported |= {"offload_queue_jobs", "offload_workers", "offload_jobs_enqueued_total",
                 "offload_jobs_completed_total"}  # fmt: skip
    assert used, "no expression names a metric"
    assert used <= exported, used - exported
