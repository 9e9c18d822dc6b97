"""GET /api/v1/stats: totals and history over HTTP, scoped by tenant, kept
after a purge; bad parameters are 400s naming them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from starlette.testclient import TestClient

from offload import App
from offload.lifecycle import State
from tests.web.conftest import settle
from tests.web.test_api import TOKENS, assert_problem, auth

Client = Callable[..., TestClient]


def purge_all(app: App) -> int:
    async def go() -> int:
        try:
            backend = await app.backend()
            cutoff = (await backend.now()) + timedelta(seconds=1)
            return await backend.job_purge(cutoff, list(State))
        finally:
            await app.close_async()

    return asyncio.run(go())


def enqueue(client: TestClient, task: str, token: str, **args: int) -> None:
    answer = client.post("/api/v1/jobs", json={"task": task, "args": args}, headers=auth(token))
    assert answer.status_code == 202, answer.text


def test_stats_count_what_ended_and_survive_the_purge(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    for _ in range(3):
        enqueue(client, "add", "token-a", a=1, b=2)
    enqueue(client, "boom", "token-a")
    enqueue(client, "add", "token-b", a=1, b=1)
    settle(app)
    before = client.get("/api/v1/stats?days=3", headers=auth("token-a")).json()
    assert before["total"] == {"processed": 4, "failed": 1, "succeeded": 3, "dead": 1,
                               "cancelled": 0}  # fmt: skip
    assert before["queues"]["default"]["processed"] == 4
    assert len(before["days"]) == 3
    assert before["days"][-1]["processed"] == 4
    assert purge_all(app) == 5
    after = client.get("/api/v1/stats?days=3", headers=auth("token-a")).json()
    assert after == before


def test_a_tenant_sees_only_its_own_counts(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    enqueue(client, "add", "token-a", a=1, b=2)
    enqueue(client, "add", "token-b", a=1, b=1)
    enqueue(client, "add", "token-b", a=2, b=1)
    settle(app)
    asked_for_b = client.get("/api/v1/stats?tenant=b", headers=auth("token-a")).json()
    assert asked_for_b["total"]["processed"] == 1
    admin = client.get("/api/v1/stats", headers=auth("token-admin")).json()
    assert admin["total"]["processed"] == 3
    only_b = client.get("/api/v1/stats?tenant=b", headers=auth("token-admin")).json()
    assert only_b["total"]["processed"] == 2
    other_queue = client.get("/api/v1/stats?queue=nope", headers=auth("token-admin")).json()
    assert other_queue["total"]["processed"] == 0
    assert other_queue["queues"] == {}


def test_bad_days_is_a_problem_naming_it(app: App, client_for: Client) -> None:
    client = client_for(app)
    for bad in ("0", "x", "400"):
        problem = assert_problem(client.get(f"/api/v1/stats?days={bad}"), 400)
        assert problem["parameter"] == "days"


def test_the_stats_route_is_documented(app: App, client_for: Client) -> None:
    spec = client_for(app).get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/stats"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"tenant", "queue", "days"}
