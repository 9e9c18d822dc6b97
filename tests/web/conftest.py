"""Apps, clients and a real server for the web tests.

Jobs are moved along through the App and the backend contract only: ``drain``
runs a burst worker, and ``lease`` starts a job as a worker would, which leaves it
running for as long as a test needs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from offload import App, JobContext
from offload.job import Job
from offload.testing import drain
from tests.servers import free_port


def make_app(url: str) -> App:
    app = App(url)

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="boom", max_attempts=1)
    def boom() -> None:
        raise ValueError("it broke")

    @app.task(name="report")
    async def report(steps: int, ctx: JobContext) -> str:
        for step in range(steps):
            await ctx.progress_async((step + 1) / steps, f"step {step + 1}")
        return "done"

    return app


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> App:
    if request.param == "sqlite":
        return make_app(f"sqlite:///{tmp_path / 'web.db'}")
    return make_app("memory://")


def settle(app: App) -> None:
    """Run a burst worker until the default queue is empty."""

    async def go() -> None:
        try:
            await drain(app)
        finally:
            await app.close_async()

    asyncio.run(go())


def lease(app: App, worker_id: str = "worker-1") -> list[Job]:
    """Start the due jobs as a worker would and leave them running."""

    async def go() -> list[Job]:
        try:
            return await (await app.backend()).job_lease(worker_id, ["default"], 100, 60)
        finally:
            await app.close_async()

    return asyncio.run(go())


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    from offload.web import create_app

    opened: list[TestClient] = []

    def build(app: App, tokens: Mapping[str, str | None] | None = None, **kw: Any) -> TestClient:
        client = TestClient(create_app(app, tokens=tokens), **kw)
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.__exit__(None, None, None)


class Server:
    """uvicorn serving a web app in a thread, on a free loopback port."""

    def __init__(self, web: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(web, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=1)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
