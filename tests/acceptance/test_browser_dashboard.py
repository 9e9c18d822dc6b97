"""Issue 16, items 7-12, in a real headless Chromium: the widget's errors, links
and bell; the overview's figures; ids and filters of the lists; the job page; the
dead letter's bulk actions and pauses pushed live; dark mode, keys and an axe-core
accessibility check of every page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offload import App
from offload.errors import JobNotFoundError
from offload.web import create_app
from offload.web.scoped import sign
from tests.acceptance.test_browser import (
    LIVE,
    Gates,
    WorkerThread,
    browser,
    build_app,
    enqueue,
    expect,
    page,
    shot,
    wait_for,
)
from tests.servers import unavailable
from tests.web.conftest import Server

__all__ = ["browser", "page"]  # fixtures shared with the dashboard's browser tests

AXE = (
    Path(__file__).resolve().parents[2]
    / ".tools"
    / "axe"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
KEY = "a signing key of the product page"
REPORT_URL = "https://files.example.com/reports/q3.pdf"


def full_app(tmp_path: Path, gates: Gates) -> App:
    app = build_app(f"sqlite:///{tmp_path / 'dash.db'}", gates)

    @app.task(name="export")
    def export() -> dict[str, str]:
        return {"url": REPORT_URL}

    @app.task(name="flaky", max_attempts=1)
    def flaky() -> None:
        raise ValueError("the ledger does not balance")

    return app


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def app(tmp_path: Path, gates: Gates) -> App:
    return full_app(tmp_path, gates)


@pytest.fixture
def site(app: App, gates: Gates) -> Iterator[str]:
    with Server(create_app(app)) as server, WorkerThread(app):
        yield server.url
        for name in list(gates._gates):
            gates.open(name)


@pytest.fixture
def wide(page: Any) -> Any:
    page.set_viewport_size({"width": 1400, "height": 900})
    return page


def test_widget_shows_errors_download_links_and_a_bell_with_a_scoped_token(
    wide: Any, app: App, gates: Gates
) -> None:
    token = sign(KEY, tenant="default", ttl=600)
    with (
        Server(create_app(app, tokens={"adm": None}, signing_key=KEY)) as server,
        WorkerThread(app),
    ):
        wide.goto(f"{server.url}/widget-demo?token={token}")
        widget = wide.locator("offload-jobs")
        expect()(widget.locator(".inline .empty")).to_be_visible(timeout=LIVE)
        running = enqueue(app, "gated", "slow")
        meta = widget.locator(f'.list li[data-job="{running}"] .meta')
        expect()(meta).to_contain_text("running", timeout=LIVE)
        first = meta.inner_text()
        expect()(meta).not_to_have_text(first, timeout=LIVE)  # the duration ticks
        dead = enqueue(app, "broken")
        done = enqueue(app, "export")
        wait_for(app, dead, "dead")
        wait_for(app, done, "succeeded")
        error = widget.locator(f'.list li[data-job="{dead}"] .error')
        expect()(error).to_have_text("the printer caught fire", timeout=LIVE)
        link = widget.locator(f'.list li[data-job="{done}"] a.download')
        expect()(link).to_have_attribute("href", REPORT_URL, timeout=LIVE)
        count = widget.locator(".bell .count")
        expect()(count).to_have_text("2", timeout=LIVE)
        shot(wide, "widget-bell-unread")
        widget.locator(".bell").click()
        popover = widget.locator(".popover")
        expect()(popover).to_be_visible()
        expect()(popover.locator("li.unread")).to_have_count(2)
        expect()(count).to_be_hidden()
        expect()(widget.locator(".bell")).to_have_attribute("aria-expanded", "true")
        shot(wide, "widget-bell-open")
        wide.keyboard.press("Escape")
        expect()(popover).to_be_hidden()
        gates.open("slow")
    assert wide.errors == []


def test_overview_shows_every_queue_column_figures_and_a_chart_with_values_on_hover(
    wide: Any, site: str, app: App, gates: Gates
) -> None:
    gates.open("a")
    for job_id in (enqueue(app, "gated", "a"), enqueue(app, "gated", "a")):
        wait_for(app, job_id, "succeeded")
    wait_for(app, enqueue(app, "broken"), "dead")
    wide.goto(site + "/")
    expect()(wide.locator("#stat-ok")).to_have_text("2", timeout=LIVE)
    expect()(wide.locator("#stat-dead")).to_have_text("1")
    expect()(wide.locator("#stat-failure")).to_have_text("33.3%")
    expect()(wide.locator("#stat-p50")).not_to_have_text("—")
    card = wide.locator("section[aria-labelledby=queues-title]").bounding_box()
    dead = wide.locator("#queues-table th", has_text="Dead").bounding_box()
    assert dead["x"] + dead["width"] <= card["x"] + card["width"], "the Dead column is cut off"
    expect()(wide.locator("#chart text", has_text="now")).to_have_count(1)
    expect()(wide.locator("#chart text", has_text="100%")).to_have_count(1)
    wide.locator('#chart .hit[data-minute="29"]').hover()
    expect()(wide.locator("#chart-tip")).to_contain_text("2 succeeded, 1 dead")
    shot(wide, "overview-1400")
    assert wide.errors == []


def test_lists_show_the_random_tail_of_ids_and_keep_filters_in_the_address(
    wide: Any, site: str, app: App, gates: Gates
) -> None:
    gates.open("x")
    done = [enqueue(app, "gated", "x") for _ in range(3)]
    dead = enqueue(app, "broken")
    for job_id in done:
        wait_for(app, job_id, "succeeded")
    wait_for(app, dead, "dead")
    wide.goto(f"{site}/jobs")
    links = wide.locator("#jobs-table tbody a.id")
    expect()(links).to_have_count(4, timeout=LIVE)
    shown = [text.replace("\n", "") for text in links.all_inner_texts()]
    assert len(set(shown)) == 4, f"ids look alike: {shown}"
    assert all(
        text.endswith(job_id[-8:]) for text, job_id in zip(shown, [dead, *done[::-1]], strict=True)
    )
    wide.select_option("#f-state", "dead")
    wide.get_by_role("button", name="Apply").click()
    expect()(wide).to_have_url(re.compile(r"/jobs\?state=dead$"))
    wide.reload()
    expect()(wide.locator("#f-state")).to_have_value("dead")
    expect()(wide.locator("#jobs-table tbody tr")).to_have_count(1, timeout=LIVE)
    expect()(wide.locator(f'#jobs-table tr[data-job="{dead}"]')).to_be_visible()
    shot(wide, "jobs-filtered")
    assert wide.errors == []


def test_a_dead_jobs_page_reads_as_a_timeline_with_the_traceback_once(
    wide: Any, site: str, app: App, gates: Gates
) -> None:
    dead = enqueue(app, "broken")
    wait_for(app, dead, "dead")
    wide.goto(f"{site}/jobs/{dead}")
    expect()(wide.locator("#job-state")).to_have_text("dead", timeout=LIVE)
    item = wide.locator('#timeline li[data-kind="dead"]')
    expect()(item.locator(".msg")).to_contain_text("RuntimeError: the printer caught fire")
    expect()(item.locator(".meta", has_text="attempt 1")).to_have_count(1)
    assert (wide.locator("main").text_content() or "").count(
        "Traceback (most recent call last)"
    ) == 1
    expect()(wide.get_by_role("button", name="Cancel")).to_be_hidden()
    expect()(wide.get_by_role("button", name="Retry")).to_be_visible()
    facts = wide.locator("#job-facts")
    expect()(facts.locator("dt:text-is('Worker') + dd")).not_to_have_text("—")
    error = wide.locator("#error-card").bounding_box()
    main = wide.locator("#job-facts").bounding_box()
    assert error["width"] >= main["width"], "the Error card is not full width"
    item.locator("summary").click()
    expect()(item.locator("details pre")).to_contain_text("RuntimeError")
    shot(wide, "job-dead")
    gates.open("ok")
    done = enqueue(app, "gated", "ok")
    wait_for(app, done, "succeeded")
    wide.goto(f"{site}/jobs/{done}")
    expect()(wide.locator("#job-progress")).to_have_js_property("value", 1, timeout=LIVE)
    expect()(wide.locator("#progress-text")).to_contain_text("100%")
    expect()(wide.locator("#error-card")).to_be_hidden()
    shot(wide, "job-succeeded-full")
    assert wide.errors == []


def test_dead_letter_retries_what_the_filter_shows_and_deletes(
    wide: Any, site: str, app: App
) -> None:
    broken = [enqueue(app, "broken") for _ in range(2)]
    flaky = enqueue(app, "flaky")
    for job_id in (*broken, flaky):
        wait_for(app, job_id, "dead")
    app.pause(queue="default")  # re-driven jobs stay queued, so the test sees them
    wide.goto(f"{site}/dead?task=broken")
    expect()(wide.locator("#dead-table tbody tr")).to_have_count(2, timeout=LIVE)
    wide.once("dialog", lambda dialog: dialog.accept())
    wide.get_by_role("button", name="Retry all").click()
    expect()(wide.locator("#notice")).to_have_text("Queued 2 dead job(s) again.", timeout=LIVE)
    assert [app.get_job(j).state for j in broken] == ["queued", "queued"]
    assert app.get_job(flaky).state == "dead"
    wide.goto(f"{site}/dead")
    expect()(wide.locator(f'#dead-table tr[data-job="{flaky}"]')).to_be_visible(timeout=LIVE)
    shot(wide, "dead-letter")
    wide.once("dialog", lambda dialog: dialog.accept())
    wide.get_by_role("button", name="Delete all dead jobs").click()
    expect()(wide.locator("#dead-table tbody")).to_have_text(
        "The dead letter is empty.", timeout=LIVE
    )
    with pytest.raises(JobNotFoundError):
        app.get_job(flaky)
    assert wide.errors == []


def test_a_pause_made_elsewhere_reaches_the_queues_page_without_a_job_event(
    wide: Any, site: str, app: App, gates: Gates
) -> None:
    gates.open("w")
    wait_for(app, enqueue(app, "gated", "w"), "succeeded")
    wide.goto(f"{site}/queues")
    row = wide.locator('#queues-table tr[data-queue="default"]')
    expect()(row.locator(".status")).to_have_text("running", timeout=LIVE)
    app.pause(queue="default")  # as the CLI would: no job moves, no job event
    expect()(row.locator(".status .badge")).to_have_text("paused", timeout=LIVE)
    app.resume(queue="default")
    expect()(row.locator(".status")).to_have_text("running", timeout=LIVE)
    assert wide.errors == []


def test_keys_move_between_pages_and_rows(wide: Any, site: str, app: App, gates: Gates) -> None:
    gates.open("k")
    job_id = enqueue(app, "gated", "k")
    wait_for(app, job_id, "succeeded")
    wide.goto(site + "/")
    expect()(wide.locator("#live-text")).to_have_text("live", timeout=LIVE)
    wide.keyboard.press("g")
    wide.keyboard.press("j")
    expect()(wide).to_have_url(f"{site}/jobs")
    expect()(wide.locator(f'#jobs-table tr[data-job="{job_id}"]')).to_be_visible(timeout=LIVE)
    wide.keyboard.press("j")
    expect()(wide.locator(f'#jobs-table tr[data-job="{job_id}"] a')).to_be_focused()
    wide.keyboard.press("Enter")
    expect()(wide).to_have_url(f"{site}/jobs/{job_id}")
    wide.keyboard.press("?")
    expect()(wide.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    assert wide.errors == []


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical findings of axe-core, run inside the page. It is
    evaluated through the DevTools protocol, which the page's CSP does not
    govern, so the dashboard needs no exception for it."""
    if not AXE.exists():
        unavailable(f"{AXE} is missing (run scripts/install-axe)")
    page.evaluate(AXE.read_text())
    found = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_in_light_and_dark(
    wide: Any, site: str, app: App, gates: Gates, scheme: str
) -> None:
    wide.emulate_media(color_scheme=scheme)
    gates.open("done")
    done = enqueue(app, "gated", "done")
    dead = enqueue(app, "broken")
    wait_for(app, done, "succeeded")
    wait_for(app, dead, "dead")
    batch = app.batch([app.get_task("gated").prepare("done")], name="a batch").id
    app.schedule("nightly", "gated", "0 3 * * *", args=["nightly"])
    paths = ["/", "/jobs", f"/jobs/{dead}", f"/jobs/{done}", "/dead", "/batches",
             f"/batches/{batch}", "/schedules", "/queues", "/widget-demo"]  # fmt: skip
    problems = {}
    for path in paths:
        wide.goto(site + path)
        expect()(wide.locator("main h1")).to_be_visible()
        expect()(wide.locator("#live-text")).not_to_have_text("connecting…", timeout=LIVE)
        if not path.startswith("/jobs/"):
            rows = wide.locator("main table tbody tr, offload-jobs .list li")
            expect()(rows.first).to_be_attached(timeout=LIVE)
        found = axe_violations(wide)
        if found:
            problems[path] = found
    name = "dark" if scheme == "dark" else "light"
    wide.goto(site + "/")
    expect()(wide.locator("#stat-ok")).to_have_text("2", timeout=LIVE)  # done and the batch's
    shot(wide, f"overview-{name}")
    wide.goto(f"{site}/jobs/{dead}")
    expect()(wide.locator("#job-state")).to_have_text("dead", timeout=LIVE)
    shot(wide, f"job-dead-{name}")
    assert problems == {}, json.dumps(problems, indent=1)
    assert wide.errors == []
