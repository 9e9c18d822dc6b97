"""``POST /api/v1/dead/retry``: what a filter picks, how ``limit`` and ``more``
page a large dead letter, what a tenant (or job-scoped) token may reach, and bad
bodies answered as problems; on memory and SQLite, against the ASGI app."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import App
from offload.testing import drain
from offload.web.scoped import sign
from tests.web.conftest import make_app
from tests.web.test_api import PROBLEM, Client, assert_problem, auth

TOKENS = {"token-a": "a", "token-b": "b", "token-admin": None}
KEY = "a signing key for the dead letter"


def dead_letter_app(url: str) -> App:
    app = make_app(url)

    @app.task(name="crash", max_attempts=1)
    def crash() -> None:
        raise RuntimeError("out of paper")

    return app


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'dead.db'}"


def kill(app: App, *jobs: tuple[str, dict[str, Any]]) -> list[str]:
    """Enqueue each (task, options) and run them until they are dead."""

    async def go() -> list[str]:
        try:
            ids = []
            for task, options in jobs:
                ids.append((await app.get_task(task).options(**options).enqueue_async()).id)
            await drain(app, ["default", "mail"])
            for job_id in ids:
                assert (await app.get_job_async(job_id)).state == "dead"
            return ids
        finally:
            await app.close_async()

    return asyncio.run(go())


def states(app: App, ids: list[str]) -> list[str]:
    return [str(app.get_job(job_id).state) for job_id in ids]


def retry(client: TestClient, body: Any = None, **kw: Any) -> Any:
    response = client.post("/api/v1/dead/retry", json=body, **kw)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def world(url: str) -> tuple[App, dict[str, str]]:
    """Dead jobs of two tasks, two queues and two tenants, and one that succeeded."""
    app = dead_letter_app(url)
    names = ["boom-a", "crash-a", "mail-a", "boom-b"]
    ids = kill(app, ("boom", {"tenant": "a"}), ("crash", {"tenant": "a"}),
               ("boom", {"tenant": "a", "queue": "mail"}), ("boom", {"tenant": "b"}))  # fmt: skip
    ok = app.get_task("add").enqueue(1, 2).id
    asyncio.run(drain(app))
    assert app.get_job(ok).state == "succeeded"
    return app, dict(zip(names, ids, strict=True)) | {"ok": ok}


def test_no_filter_queues_every_dead_job_again_and_nothing_else(
    world: tuple[App, dict[str, str]], client_for: Client
) -> None:
    app, ids = world
    client = client_for(app)
    assert retry(client) == {"retried": 4, "more": False}
    dead = [ids[n] for n in ("boom-a", "crash-a", "mail-a", "boom-b")]
    assert states(app, dead) == ["queued"] * 4
    assert app.get_job(ids["ok"]).state == "succeeded"
    events = client.get(f"/api/v1/jobs/{ids['crash-a']}").json()["events"]
    assert events[-1]["kind"] == "retried"
    assert retry(client) == {"retried": 0, "more": False}


@pytest.mark.parametrize(
    ("body", "picked"),
    [
        ({"task": "crash"}, {"crash-a"}),
        ({"queue": "mail"}, {"mail-a"}),
        ({"tenant": "b"}, {"boom-b"}),
        ({"task": "boom", "tenant": "a"}, {"boom-a", "mail-a"}),
        ({"task": "boom", "queue": "default", "tenant": "a"}, {"boom-a"}),
        ({"task": "add"}, set()),
    ],
)
def test_a_filter_retries_only_the_dead_jobs_it_matches(
    world: tuple[App, dict[str, str]], client_for: Client, body: dict[str, str], picked: set[str]
) -> None:
    app, ids = world
    answer = retry(client_for(app), body)
    assert answer == {"retried": len(picked), "more": False}
    for name in ("boom-a", "crash-a", "mail-a", "boom-b"):
        assert app.get_job(ids[name]).state == ("queued" if name in picked else "dead"), name


def test_limit_retries_that_many_and_more_says_whether_some_are_left(
    url: str, client_for: Client
) -> None:
    app = dead_letter_app(url)
    ids = kill(app, *[("boom", {}) for _ in range(5)])
    client = client_for(app)
    assert retry(client, {"limit": 2}) == {"retried": 2, "more": True}
    assert retry(client, {"limit": 2}) == {"retried": 2, "more": True}
    assert sorted(states(app, ids)).count("queued") == 4
    # The last one fills the limit exactly: nothing is left, and the answer says so.
    assert retry(client, {"limit": 1}) == {"retried": 1, "more": False}
    assert states(app, ids) == ["queued"] * 5


def test_a_tenant_token_retries_only_its_own_tenants_jobs(
    world: tuple[App, dict[str, str]], client_for: Client
) -> None:
    app, ids = world
    client = client_for(app, TOKENS)
    # Asking for another tenant is ignored, as on every read: a's own are retried.
    assert retry(client, {"tenant": "b"}, headers=auth("token-a")) == {"retried": 3, "more": False}
    assert app.get_job(ids["boom-b"]).state == "dead"
    assert states(app, [ids["boom-a"], ids["crash-a"], ids["mail-a"]]) == ["queued"] * 3
    assert retry(client, {}, headers=auth("token-b")) == {"retried": 1, "more": False}
    assert app.get_job(ids["boom-b"]).state == "queued"


def test_an_admin_token_may_name_a_tenant(
    world: tuple[App, dict[str, str]], client_for: Client
) -> None:
    app, ids = world
    client = client_for(app, TOKENS)
    assert retry(client, {"tenant": "b"}, headers=auth("token-admin"))["retried"] == 1
    assert app.get_job(ids["boom-a"]).state == "dead"
    assert_problem(client.post("/api/v1/dead/retry", json={}), 401)
    assert app.get_job(ids["crash-a"]).state == "dead"


def test_read_only_and_job_scoped_tokens_are_refused_and_retry_nothing(
    world: tuple[App, dict[str, str]],
) -> None:
    from offload.web import create_app

    app, ids = world
    reader = sign(KEY, tenant="a")
    one_job = sign(KEY, tenant="a", jobs=[ids["crash-a"]], read_only=False)
    writer = sign(KEY, tenant="a", read_only=False)
    with TestClient(create_app(app, tokens={"adm": None}, signing_key=KEY)) as client:
        for token in (reader, one_job):
            assert_problem(client.post("/api/v1/dead/retry", json={}, headers=auth(token)), 403)
        assert states(app, [ids["boom-a"], ids["crash-a"], ids["mail-a"]]) == ["dead"] * 3
        assert retry(client, {}, headers=auth(writer)) == {"retried": 3, "more": False}
    assert app.get_job(ids["boom-b"]).state == "dead"


@pytest.mark.parametrize(
    ("raw", "status", "names"),
    [
        (b"{not json", 400, "JSON"),
        (b"[]", 422, ""),
        (b'{"limit": 0}', 422, "limit"),
        (b'{"limit": 10001}', 422, "limit"),
        (b'{"limit": "all"}', 422, "limit"),
        (b'{"task": ""}', 422, "task"),
        (b'{"queue": 7}', 422, "queue"),
        (b'{"state": "dead"}', 422, "state"),
    ],
)
def test_a_bad_body_is_a_problem_naming_it_and_retries_nothing(
    world: tuple[App, dict[str, str]], client_for: Client, raw: bytes, status: int, names: str
) -> None:
    app, ids = world
    client = client_for(app)
    response = client.post("/api/v1/dead/retry", content=raw,
                           headers={"Content-Type": "application/json"})  # fmt: skip
    body = assert_problem(response, status)
    assert response.headers["content-type"].startswith(PROBLEM)
    assert names in response.text, body
    assert app.get_job(ids["boom-a"]).state == "dead"


def test_an_empty_body_means_every_dead_job(url: str, client_for: Client) -> None:
    app = dead_letter_app(url)
    (job_id,) = kill(app, ("boom", {}))
    response = client_for(app).post("/api/v1/dead/retry")
    assert response.status_code == 200, response.text
    assert response.json() == {"retried": 1, "more": False}
    assert app.get_job(job_id).state == "queued"
