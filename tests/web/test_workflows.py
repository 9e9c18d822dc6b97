"""Workflows over HTTP: the list, one graph as nodes and edges, cancel, and
what a tenant token may see."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from offload import App, Workflow, chain, group
from offload._sync import run_sync
from tests.web.conftest import settle
from tests.web.test_api import TOKENS, assert_problem, auth

Client = Callable[..., TestClient]


def diamond(app: App, tenant: str = "default") -> Workflow:
    add = app.tasks["add"]
    graph = chain(add.prepare(1, 1), group(add.prepare(1, 2), add.prepare(2, 2)),
                  add.prepare(3, 3))  # fmt: skip

    async def go() -> Workflow:
        try:
            return await app.workflow_async(graph, name="diamond", tenant=tenant)
        finally:
            await app.close_async()

    return run_sync(go())


def test_one_workflow_is_its_nodes_and_edges(app: App, client_for: Client) -> None:
    flow = diamond(app)
    client = client_for(app)
    body = client.get(f"/api/v1/workflows/{flow.id}").json()
    assert (body["id"], body["name"], body["state"]) == (flow.id, "diamond", "running")
    steps = {n["step"]: n for n in body["nodes"]}
    assert len(steps) == 4
    assert len(body["edges"]) == 4
    assert body["counts"] == {"queued": 1, "scheduled": 3}
    settle(app)
    done = client.get(f"/api/v1/workflows/{flow.id}").json()
    assert done["state"] == "succeeded"
    assert {n["state"] for n in done["nodes"]} == {"succeeded"}


def test_the_list_holds_workflows_only(app: App, client_for: Client) -> None:
    flow = diamond(app)
    client = client_for(app)
    client.post("/api/v1/batches", json={"jobs": [{"task": "add", "args": {"a": 1, "b": 1}}]})
    listed = client.get("/api/v1/workflows").json()
    assert [w["id"] for w in listed["workflows"]] == [flow.id]
    assert listed["workflows"][0]["total"] == 4


def test_cancel_ends_every_job_not_ended(app: App, client_for: Client) -> None:
    flow = diamond(app)
    client = client_for(app)
    response = client.post(f"/api/v1/workflows/{flow.id}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"


def test_unknown_malformed_and_other_tenants_workflows_are_404(
    app: App, client_for: Client
) -> None:
    theirs = diamond(app, tenant="b")
    client = client_for(app, tokens=TOKENS)
    for path in (f"/api/v1/workflows/{theirs.id}", "/api/v1/workflows/nope"):
        response = client.get(path, headers=auth("token-a"))
        assert assert_problem(response, 404)["type"].endswith("workflow-not-found")
    mine = client.get("/api/v1/workflows", headers=auth("token-a")).json()
    assert mine["workflows"] == []
    seen = client.get("/api/v1/workflows", headers=auth("token-b")).json()
    assert [w["id"] for w in seen["workflows"]] == [theirs.id]
