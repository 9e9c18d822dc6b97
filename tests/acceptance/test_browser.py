"""The dashboard and the end-user widget in a real headless Chromium.

uvicorn serves the web app in one thread and a worker runs jobs in another, on
the same store. Tasks wait on a gate the test opens, so a job stays running for
exactly as long as a test needs and nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from offload import App
from offload.lifecycle import State
from offload.web import create_app
from offload.worker import Worker
from tests.servers import unavailable
from tests.web.conftest import Server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
LIVE = 10_000  # ms: generous for a loaded machine; the stream itself is far faster


class Gates:
    """Named switches a task waits on, opened from the test's thread."""

    def __init__(self) -> None:
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(name, threading.Event())

    def open(self, name: str) -> None:
        self.get(name).set()


def build_app(url: str, gates: Gates) -> App:
    app = App(url)

    @app.task(name="gated")
    async def gated(name: str) -> dict[str, str]:
        # The gate is a threading.Event opened from the test's thread; an
        # asyncio.Event could not be set from there.
        while not gates.get(name).is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return {"report": f"{name}.pdf"}

    @app.task(name="broken", max_attempts=1)
    def broken() -> None:
        raise RuntimeError("the printer caught fire")

    return app


class WorkerThread:
    """A worker in its own thread and event loop, stopped through that loop."""

    def __init__(self, app: App) -> None:
        self.worker = Worker(app, ["default"], concurrency=4, handle_signals=False,
                             poll_interval=0.05, lease_seconds=3, grace_period=0)  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self.worker.run())

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.worker.stop, True)
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is not installed (run scripts/install-browser)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def app(tmp_path: Path, gates: Gates) -> App:
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    return build_app(url, gates)


@pytest.fixture
def site(app: App, gates: Gates) -> Iterator[str]:
    with Server(create_app(app)) as server, WorkerThread(app):
        yield server.url
        for name in list(gates._gates):
            gates.open(name)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    context.close()


def enqueue(app: App, task: str, *args: Any) -> str:
    return app.get_task(task).enqueue(*args).id


def wait_for(app: App, job_id: str, state: str, timeout: float = 10.0) -> None:
    """Bounded poll; Playwright's sync API owns this thread's event loop, so the
    async helpers of ``offload.testing`` cannot run here."""
    deadline = time.monotonic() + timeout
    while app.get_job(job_id).state != state:
        assert time.monotonic() < deadline, f"job {job_id} never became {state}"
        time.sleep(0.02)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def expect() -> Any:
    return sync_api.expect


def test_every_page_opens_without_console_errors(
    page: Any, site: str, app: App, gates: Gates
) -> None:
    gates.open("done")
    done = enqueue(app, "gated", "done")
    dead = enqueue(app, "broken")
    running = enqueue(app, "gated", "held")
    wait_for(app, dead, "dead")
    wait_for(app, done, "succeeded")
    wait_for(app, running, "running")
    batch = make_batch(app, "done", "held", name="monthly invoices")
    app.schedule("nightly", "gated", "0 3 * * *", args=["nightly"], timezone="Europe/Berlin")
    pages = {
        "overview": "/", "jobs": "/jobs", "job": f"/jobs/{running}", "dead": "/dead",
        "batches": "/batches", "batch": f"/batches/{batch}", "schedules": "/schedules",
        "queues": "/queues",
    }  # fmt: skip
    for name, path in pages.items():
        page.goto(site + path)
        expect()(page.locator("#live-text")).to_have_text("live", timeout=LIVE)
        expect()(page.locator("main h1")).to_be_visible()
        checks = {
            "overview": '#queues-table tr[data-queue="default"]',
            "dead": f'#dead-table tr[data-job="{dead}"]',
            "batches": f'#batches-table tr[data-batch="{batch}"]',
            "batch": "#jobs-table tbody tr >> nth=1",
            "schedules": '[data-schedule="default/nightly"] .firings li >> nth=2',
            "queues": '#queues-table tr[data-queue="default"] button',
        }  # fmt: skip
        if name in checks:
            expect()(page.locator(checks[name])).to_be_visible(timeout=LIVE)
        shot(page, name)
    page.goto(f"{site}/widget-demo")
    expect()(page.locator("offload-jobs .list li").first).to_be_visible(timeout=LIVE)
    shot(page, "widget-demo")
    assert page.errors == []


def make_batch(app: App, *gates: str, name: str | None = None) -> str:
    """A batch of gated jobs, one per gate name."""
    task = app.get_task("gated")
    return app.batch([task.prepare(g) for g in gates], name=name).id


def test_a_batch_shows_its_progress_move_without_reload(
    page: Any, site: str, app: App, gates: Gates
) -> None:
    batch = make_batch(app, "part-1", "part-2", "part-3", name="quarterly")
    page.goto(f"{site}/batches")
    row = page.locator(f'#batches-table tr[data-batch="{batch}"]')
    expect()(row.locator(".progress-text")).to_have_text("0 of 3 ended (0%)", timeout=LIVE)
    page.evaluate("window.__sameDocument = true")
    gates.open("part-1")
    expect()(row.locator(".progress-text")).to_have_text("1 of 3 ended (33%)", timeout=LIVE)
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "batches-progress")
    row.get_by_role("link").click()
    expect()(page.locator("#batch-id")).to_have_text(batch)
    expect()(page.locator("#progress-text")).to_have_text("1 of 3 ended (33%)", timeout=LIVE)
    expect()(page.locator("#jobs-table tbody tr")).to_have_count(3)
    page.evaluate("window.__sameDocument = true")
    gates.open("part-2")
    expect()(page.locator("#progress-text")).to_have_text("2 of 3 ended (67%)", timeout=LIVE)
    expect()(page.locator("#count-succeeded")).to_have_text("2")
    expect()(page.locator("#count-running")).to_have_text("1")
    expect()(page.locator("#batch-progress")).to_have_attribute("value", "2")
    expect()(page.locator("#jobs-table .state", has_text="succeeded")).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "batch-progress")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel batch").click()
    expect()(page.locator("#count-cancelled")).to_have_text("1", timeout=LIVE)
    expect()(page.locator("#progress-text")).to_have_text("3 of 3 ended (100%)", timeout=LIVE)
    expect()(page.get_by_role("button", name="Cancel batch")).to_be_disabled()
    assert app.get_batch(batch).counts.get(State.CANCELLED) == 1
    shot(page, "batch-cancelled")
    assert page.errors == []


def test_pause_and_resume_a_queue_from_the_queues_page(
    page: Any, site: str, app: App, gates: Gates
) -> None:
    gates.open("warm-up")
    wait_for(app, enqueue(app, "gated", "warm-up"), "succeeded")
    page.goto(f"{site}/queues")
    row = page.locator('#queues-table tr[data-queue="default"]')
    expect()(row.locator(".status")).to_have_text("running", timeout=LIVE)
    row.get_by_role("button", name="Pause queue default", exact=True).click()
    expect()(row.locator(".status .badge")).to_have_text("paused", timeout=LIVE)
    listed = page.locator("#pauses-list li", has_text="queue default (every tenant)")
    expect()(listed).to_be_visible()
    assert page.request.get(f"{site}/api/v1/pauses").json()["pauses"][0]["queue"] == "default"
    gates.open("held-back")
    job_id = enqueue(app, "gated", "held-back")
    expect()(row.locator("td.num").nth(1)).to_have_text("1", timeout=LIVE)  # queued
    assert app.get_job(job_id).state == "queued"
    shot(page, "queue-paused")
    row.get_by_role("button", name="Resume queue default", exact=True).click()
    expect()(row.locator(".status")).to_have_text("running", timeout=LIVE)
    wait_for(app, job_id, "succeeded")
    expect()(page.locator("#pauses-list")).to_have_text("Nothing is paused.")
    assert page.request.get(f"{site}/api/v1/pauses").json() == {"pauses": []}
    page.goto(site + "/")
    expect()(page.locator('#queues-table tr[data-queue="default"] .badge')).to_have_count(0)
    assert page.errors == []


def test_a_paused_queue_carries_a_badge_on_the_overview(page: Any, site: str, app: App) -> None:
    app.pause(queue="default")
    job_id = enqueue(app, "gated", "overview")  # held back: queued until the resume
    page.goto(site + "/")
    badge = page.locator('#queues-table tr[data-queue="default"] .badge')
    expect()(badge).to_have_text("paused", timeout=LIVE)
    assert app.get_job(job_id).state == "queued"
    app.resume(queue="default")  # the job starts, and its event redraws the table
    expect()(badge).to_have_count(0, timeout=LIVE)
    wait_for(app, job_id, "running")
    assert page.errors == []


def test_a_job_goes_from_running_to_succeeded_without_reload(
    page: Any, site: str, app: App, gates: Gates
) -> None:
    job_id = enqueue(app, "gated", "report")
    page.goto(f"{site}/jobs/{job_id}")
    expect()(page.locator("#job-state")).to_have_text("running", timeout=LIVE)
    page.evaluate("window.__sameDocument = true")
    gates.open("report")
    expect()(page.locator("#job-state")).to_have_text("succeeded", timeout=LIVE)
    expect()(page.locator("#job-result")).to_contain_text("report.pdf", timeout=LIVE)
    expect()(page.locator('#timeline li[data-kind="succeeded"]')).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "job-succeeded")
    assert page.errors == []


def test_cancel_button_cancels_a_running_job(page: Any, site: str, app: App) -> None:
    job_id = enqueue(app, "gated", "never")
    page.goto(f"{site}/jobs/{job_id}")
    expect()(page.locator("#job-state")).to_have_text("running", timeout=LIVE)
    page.get_by_role("button", name="Cancel").click()
    expect()(page.locator("#job-state")).to_have_text("cancelled", timeout=LIVE)
    expect()(page.get_by_role("button", name="Retry")).to_be_enabled()
    assert app.get_job(job_id).state == "cancelled"
    shot(page, "job-cancelled")
    assert page.errors == []


def test_jobs_list_updates_live(page: Any, site: str, app: App, gates: Gates) -> None:
    page.goto(f"{site}/jobs")
    expect()(page.locator("#live-text")).to_have_text("live", timeout=LIVE)
    job_id = enqueue(app, "gated", "listed")
    row = page.locator(f'#jobs-table tr[data-job="{job_id}"]')
    expect()(row.locator(".state")).to_have_text("running", timeout=LIVE)
    gates.open("listed")
    expect()(row.locator(".state")).to_have_text("succeeded", timeout=LIVE)
    assert page.errors == []


def test_widget_spinner_turns_into_an_output_link(
    page: Any, site: str, app: App, gates: Gates
) -> None:
    page.goto(f"{site}/widget-demo")
    expect()(page.locator("offload-jobs .inline .empty")).to_be_visible(timeout=LIVE)
    job_id = enqueue(app, "gated", "widget")
    item = page.locator(f'offload-jobs .list li[data-job="{job_id}"]')
    expect()(item.locator(".spinner")).to_be_visible(timeout=LIVE)
    shot(page, "widget-running")
    gates.open("widget")
    link = item.locator("a.output")
    expect()(link).to_be_visible(timeout=LIVE)
    expect()(item.locator(".spinner")).to_have_count(0)
    href = link.get_attribute("href")
    assert href == f"/api/v1/jobs/{job_id}/output"
    assert page.request.get(site + href).json() == {"report": "widget.pdf"}
    shot(page, "widget-done")
    assert page.errors == []


def test_with_tokens_the_dashboard_asks_for_one(page: Any, app: App) -> None:
    job_id = enqueue(app, "broken")
    with Server(create_app(app, tokens={"t-acme": "default"})) as server:
        page.goto(f"{server.url}/jobs")
        dialog = page.get_by_role("dialog", name="API token")
        expect()(dialog).to_be_visible(timeout=LIVE)
        shot(page, "token-dialog")
        page.get_by_role("textbox", name="Token").fill("t-acme")
        page.get_by_role("button", name="Use token").click()
        expect()(page.locator("#live-text")).to_have_text("live", timeout=LIVE)
        expect()(page.locator(f'#jobs-table tr[data-job="{job_id}"]')).to_be_visible(timeout=LIVE)
        assert page.evaluate("sessionStorage.getItem('offload-token')") == "t-acme"
    assert page.errors == []
