"""The dashboard on PostgreSQL and Redis in a real headless Chromium: a smoke of
the pages the other browser tests check on SQLite (overview, a job, the dead
letter, a batch) and of live updates that need no job event of the page's own:
a pause made elsewhere, and a batch finishing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from offload import App
from offload.web import create_app
from tests.acceptance.test_browser import (
    LIVE,
    Gates,
    WorkerThread,
    browser,
    build_app,
    enqueue,
    expect,
    page,
    wait_for,
)
from tests.web.conftest import Server

__all__ = ["browser", "page"]  # fixtures shared with the other browser tests


def _url(name: str, request: pytest.FixtureRequest) -> str:
    if name == "postgres":
        from tests.servers.postgres import postgres_url

        return postgres_url(request)
    from tests.servers.redis import redis_url

    return redis_url(request)


@pytest.fixture(params=["postgres", "redis"])
def app(request: pytest.FixtureRequest, gates: Gates) -> Iterator[App]:
    application = build_app(_url(request.param, request), gates)
    yield application
    application.close()


@pytest.fixture
def gates() -> Gates:
    return Gates()


class ClosingWorker(WorkerThread):
    """Closes its loop's backend when it stops: a PostgreSQL or Redis instance
    runs tasks of its own (a pool, a listener) that must not outlive the loop."""

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.app = app

    def _run(self) -> None:
        super()._run()
        self.loop.run_until_complete(self.app.close_async())


@pytest.fixture
def site(app: App, gates: Gates) -> Iterator[str]:
    with Server(create_app(app)) as server, ClosingWorker(app):
        yield server.url
        for name in list(gates._gates):
            gates.open(name)


def test_the_dashboard_opens_and_follows_live(page: Any, site: str, app: App, gates: Gates) -> None:
    gates.open("ok")
    done = enqueue(app, "gated", "ok")
    dead = enqueue(app, "broken")
    wait_for(app, done, "succeeded")
    wait_for(app, dead, "dead")

    page.goto(site + "/")
    expect()(page.locator("#live-text")).to_have_text("live", timeout=LIVE)
    row = page.locator('#queues-table tr[data-queue="default"]')
    expect()(row).to_be_visible(timeout=LIVE)
    app.pause(queue="default")  # as the CLI would: only a `paused` event tells the page
    expect()(row.locator(".badge")).to_have_text("paused", timeout=LIVE)
    app.resume(queue="default")
    expect()(row.locator(".badge")).to_have_count(0, timeout=LIVE)

    page.goto(f"{site}/jobs/{done}")
    expect()(page.locator("#job-state")).to_have_text("succeeded", timeout=LIVE)
    page.goto(f"{site}/dead")
    expect()(page.locator(f'#dead-table tr[data-job="{dead}"]')).to_be_visible(timeout=LIVE)

    batch = app.batch([app.get_task("gated").prepare("last")], name="smoke").id
    page.goto(f"{site}/batches/{batch}")
    expect()(page.locator("#batch-state")).to_have_text("in progress", timeout=LIVE)
    gates.open("last")  # its job ends, then the worker finishes the batch
    expect()(page.locator("#batch-state")).to_have_text("finished", timeout=LIVE)
    assert page.errors == []
