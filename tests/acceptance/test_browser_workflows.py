"""Issue 17's dashboard pages in a real headless Chromium: the workflows list,
a workflow drawn as a graph whose steps change state live, its cancel button,
and an axe-core check of both pages in light and dark."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from offload import App, step
from offload.web import create_app
from tests.acceptance.test_browser import (
    LIVE,
    Gates,
    WorkerThread,
    browser,
    build_app,
    expect,
    page,
    shot,
    wait_for,
)
from tests.acceptance.test_browser_dashboard import axe_violations
from tests.web.conftest import Server

__all__ = ["browser", "page"]


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def app(tmp_path: Any, gates: Gates) -> App:
    return build_app(f"sqlite:///{tmp_path / 'flows.db'}", gates)


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


def diamond(app: App, top: str = "gated", name: str = "diamond") -> dict[str, str]:
    """A -> B, C -> D, every step waiting on a gate named after it."""
    gated = app.get_task("gated")
    first = gated.prepare("A") if top == "gated" else app.get_task(top).prepare()
    flow = app.workflow({
        "A": first,
        "B": step(gated.prepare("B"), after=["A"]),
        "C": step(gated.prepare("C"), after=["A"]),
        "D": step(gated.prepare("D"), after=["B", "C"]),
    }, name=name)  # fmt: skip
    return {"id": flow.id} | {s: job.id for s, job in flow.jobs.items()}


def node(page: Any, name: str) -> Any:
    return page.locator(f'#graph .node[data-step="{name}"]')


def boxes(page: Any, names: str) -> dict[str, dict[str, float]]:
    """Each step's box. A live update redraws the whole graph, and a box read
    from a node replaced in between is None: read again until all are there."""
    deadline = time.monotonic() + LIVE / 1000
    while True:
        found = {name: node(page, name).locator("rect").bounding_box() for name in names}
        if all(box is not None for box in found.values()) or time.monotonic() > deadline:
            assert all(box is not None for box in found.values()), found
            return found
        page.wait_for_timeout(50)


def expect_states(page: Any, **states: str) -> None:
    for name, state in states.items():
        expect()(node(page, name)).to_have_class(f"node state-{state}", timeout=LIVE)
        row = page.locator(f'#steps-table tr[data-step="{name}"] .state')
        expect()(row).to_have_text(state, timeout=LIVE)


def test_a_workflow_is_listed_and_drawn_in_layers_with_states_moving_live(
    wide: Any, site: str, app: App, gates: Gates
) -> None:
    ids = diamond(app)
    wait_for(app, ids["A"], "running")
    wide.goto(f"{site}/workflows")
    row = wide.locator(f'#workflows-table tr[data-workflow="{ids["id"]}"]')
    expect()(row).to_contain_text("diamond", timeout=LIVE)
    expect()(row.locator(".state")).to_have_text("running")
    shot(wide, "workflows-list")
    row.locator("a.id").click()
    expect()(wide).to_have_url(f"{site}/workflows/{ids['id']}")
    expect()(wide.locator("#flow-name")).to_have_text("Workflow diamond", timeout=LIVE)
    expect()(wide.locator("#graph .node")).to_have_count(4)
    expect()(wide.locator("#graph .edge")).to_have_count(4)
    expect_states(wide, A="running", B="scheduled", C="scheduled", D="scheduled")
    box = boxes(wide, "ABCD")
    assert box["A"]["x"] < box["B"]["x"] == box["C"]["x"] < box["D"]["x"], box
    assert box["B"]["y"] != box["C"]["y"]
    expect()(wide.locator("#live-text")).to_have_text("live", timeout=LIVE)
    gates.open("A")
    expect_states(wide, A="succeeded", B="running", C="running", D="scheduled")
    expect()(wide.locator("#progress-text")).to_contain_text("1 of 4 steps ended")
    shot(wide, "workflow-running")
    for name in "BCD":
        gates.open(name)
    expect_states(wide, A="succeeded", B="succeeded", C="succeeded", D="succeeded")
    expect()(wide.locator("#flow-state")).to_have_text("succeeded", timeout=LIVE)
    expect()(wide.locator("#cancel")).to_be_hidden()
    expect()(wide.locator("#count-succeeded")).to_have_text("4")
    shot(wide, "workflow-succeeded")
    node(wide, "D").click()
    expect()(wide).to_have_url(f"{site}/jobs/{ids['D']}")
    expect()(wide.locator('#timeline li[data-kind="released"]')).to_have_count(1, timeout=LIVE)
    assert wide.errors == []


def test_cancel_stops_the_running_step_and_cancels_the_waiting_ones(
    wide: Any, site: str, app: App
) -> None:
    ids = diamond(app)
    wait_for(app, ids["A"], "running")
    wide.goto(f"{site}/workflows/{ids['id']}")
    expect_states(wide, A="running", B="scheduled")
    wide.once("dialog", lambda dialog: dialog.accept())
    wide.get_by_role("button", name="Cancel workflow").click()
    expect_states(wide, A="cancelled", B="cancelled", C="cancelled", D="cancelled")
    expect()(wide.locator("#flow-state")).to_have_text("cancelled", timeout=LIVE)
    expect()(wide.locator("#cancel")).to_be_hidden()
    assert {app.get_job(ids[s]).state for s in "ABCD"} == {"cancelled"}
    shot(wide, "workflow-cancelled")
    assert wide.errors == []


def test_a_dead_step_shows_its_dependents_cancelled_with_the_reason(
    wide: Any, site: str, app: App
) -> None:
    ids = diamond(app, top="broken", name="doomed")
    wide.goto(f"{site}/workflows/{ids['id']}")
    expect_states(wide, A="dead", B="cancelled", C="cancelled", D="cancelled")
    expect()(wide.locator("#flow-state")).to_have_text("dead", timeout=LIVE)
    shot(wide, "workflow-dead")
    wide.goto(f"{site}/jobs/{ids['B']}")
    item = wide.locator('#timeline li[data-kind="cancelled"] .msg')
    expect()(item).to_contain_text(f"parent {ids['A']} dead", timeout=LIVE)
    assert wide.errors == []


def test_an_unknown_or_malformed_workflow_says_so(wide: Any, site: str) -> None:
    wide.goto(f"{site}/workflows/01a23369-0000-7000-8000-000000000000")
    expect()(wide.locator("#notice")).to_have_text(
        "No such workflow (or not visible with this token).", timeout=LIVE
    )
    assert wide.request.get(f"{site}/workflows/not-an-id").status == 404


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_workflow_pages_pass_axe(wide: Any, site: str, app: App, gates: Gates, scheme: str) -> None:
    wide.emulate_media(color_scheme=scheme)
    ids = diamond(app)
    gates.open("A")
    wait_for(app, ids["B"], "running")
    problems = {}
    for path in ("/workflows", f"/workflows/{ids['id']}"):
        wide.goto(site + path)
        expect()(wide.locator("#live-text")).to_have_text("live", timeout=LIVE)
        expect()(wide.locator("main table tbody tr a").first).to_be_visible(timeout=LIVE)
        found = axe_violations(wide)
        if found:
            problems[path] = found
    expect_states(wide, A="succeeded", B="running", C="running")
    shot(wide, f"workflow-{scheme}")
    assert problems == {}, json.dumps(problems, indent=1)
    assert wide.errors == []
