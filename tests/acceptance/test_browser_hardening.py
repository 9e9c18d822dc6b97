"""A page of another origin, open in the same headless Chromium, tries to steer
an open offload server the ways a browser allows without any permission: a
``text/plain`` form (no script needed), ``no-cors`` fetches, and a frame around
the dashboard to trick a click. None of it may change anything (issue 13).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from offload import App
from offload.job import JobQuery
from offload.web import create_app
from tests.acceptance.test_browser import LIVE, Gates, browser, build_app, expect, page
from tests.web.conftest import Server

__all__ = ["browser", "page"]  # fixtures shared with the dashboard's browser tests

ATTACK = """<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="post" enctype="text/plain" target="sink" action="{api}/jobs">
  <input name='{{"task": "gated", "args": {{"name": "x"}}, "pad": "' value='"}}'>
</form>
<script>
const api = "{api}";
const shots = [
  fetch(api + "/pause", {{method: "POST", mode: "no-cors", body: "{{}}"}}),
  fetch(api + "/pause", {{method: "POST", mode: "no-cors", body: "{{}}",
                          headers: {{"Content-Type": "text/plain"}}}}),
  fetch(api + "/dead/purge", {{method: "POST", mode: "no-cors"}}),
  fetch(api + "/jobs/{dead}/retry", {{method: "POST", mode: "no-cors"}}),
].map((p) => p.catch(() => null));
document.getElementById("sink").addEventListener("load", () => {{
  Promise.all(shots).then(() => {{ window.__done = true; }});
}}, {{once: true}});
document.getElementById("f").submit();
</script></body></html>"""

FRAME = """<!doctype html><html><body>
<iframe id="victim" src="{site}/queues" width="800" height="600"></iframe>
</body></html>"""


def attacker(site: str, dead: str) -> Starlette:
    async def attack(request: Request) -> HTMLResponse:
        return HTMLResponse(ATTACK.format(api=f"{site}/api/v1", dead=dead))

    async def frame(request: Request) -> HTMLResponse:
        return HTMLResponse(FRAME.format(site=site))

    return Starlette(routes=[Route("/", attack), Route("/frame", frame)])


@pytest.fixture
def app(tmp_path: Path) -> App:
    return build_app(f"sqlite:///{tmp_path / 'browser.db'}", Gates())


@pytest.fixture
def servers(app: App) -> Iterator[tuple[str, str]]:
    dead = app.get_task("broken").enqueue().id
    with Server(create_app(app)) as site, Server(attacker(site.url, dead)) as evil:
        yield site.url, evil.url


def test_a_cross_origin_page_changes_nothing(page: Any, app: App, servers: tuple[str, str]) -> None:
    _site, evil = servers
    before = [j.id for j in app.list_jobs(JobQuery())]
    page.goto(evil + "/")
    page.wait_for_function("window.__done === true", timeout=LIVE)
    assert [j.id for j in app.list_jobs(JobQuery())] == before
    assert app.pauses() == []
    assert app.get_job(before[0]).state == "queued"


def test_the_dashboard_cannot_be_framed(page: Any, servers: tuple[str, str]) -> None:
    _site, evil = servers
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=LIVE):
        page.goto(evil + "/frame")
    victim = page.frame_locator("#victim")
    expect()(victim.locator("main h1")).to_have_count(0)


def test_a_printed_link_with_a_token_opens_the_dashboard_and_hides_it(page: Any, app: App) -> None:
    with Server(create_app(app, tokens={"made-at-start": None})) as server:
        page.goto(f"{server.url}/jobs?token=made-at-start")
        expect()(page.locator("#live-text")).to_have_text("live", timeout=LIVE)
        assert "token" not in page.url
        assert page.evaluate("sessionStorage.getItem('offload-token')") == "made-at-start"
    assert page.errors == []
