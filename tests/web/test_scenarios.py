"""Scenarios 22 and 23 of the fault catalogue, over every route the web app
serves: the routes are walked from the Starlette app, so a route added later is
covered without touching this file."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from offload import App
from offload.web import create_app
from offload.web.dashboard import routes as dashboard_routes
from offload.workflow import chain
from tests.web.conftest import make_app

TOKENS = {"token-a": "a", "token-b": "b", "token-admin": None}
# Served to anyone: the health check and the public pages (the dashboard's
# pages load their data from the API with the token the browser holds).
PUBLIC = {"/healthz", "/openapi.json"} | {r.path for r in dashboard_routes()
                                          if isinstance(r, Route)}  # fmt: skip
OWNED = {"job_id", "batch_id", "schedule_id", "workflow_id"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def every_route(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """``(method, path template)`` of every endpoint, HEAD aside (GET's twin)."""
    out = []
    for r in routes:
        if isinstance(r, Route):
            out += [(m, r.path) for m in sorted(r.methods or ()) if m != "HEAD"]
        elif isinstance(r, Mount) and r.path != "/static":
            out += [(m, r.path + p) for m, p in every_route(list(r.routes))]
    return out


ROUTES = every_route(create_app(App("memory://"), tokens=TOKENS).routes)
PROTECTED = [(m, p) for m, p in ROUTES if p not in PUBLIC]
# Routes that name one tenant-owned resource; PUT of a schedule creates the
# caller's own schedule (ids are unique within a tenant), so it is checked apart.
NAMED = [(m, p) for m, p in PROTECTED if "{" in p and not (m == "PUT" and "schedule" in p)]
BODIES: dict[str, Any] = {
    "/api/v1/jobs": {"task": "add", "args": {"a": 1, "b": 1}},
    "/api/v1/batches": {"jobs": [{"task": "add", "args": {"a": 1, "b": 1}}]},
    "/api/v1/batches/{batch_id}/jobs": {"jobs": [{"task": "add", "args": {"a": 1, "b": 1}}]},
    "/api/v1/schedules/{schedule_id}": {
        "task": "add",
        "args": {"a": 1, "b": 1},
        "cron": "0 0 * * *",
    },
    "/api/v1/pause": {"tenant": "b"},
    "/api/v1/resume": {"tenant": "b"},
}


@pytest.fixture(scope="module")
def owned() -> tuple[TestClient, dict[str, str]]:
    """A client with tenant b's job, batch and schedule; their ids by param.
    One for the module: the checks are HTTP-level, the same on every backend
    (the backends' own tenant scoping is in the contract suite), and every
    request here is refused, so none changes what the next one sees."""
    app = make_app("memory://")
    client = TestClient(create_app(app, tokens=TOKENS))
    b = auth("token-b")
    add = app.get_task("add")
    flow = app.workflow(chain(add.prepare(a=1, b=1), add.prepare(a=2, b=2)), tenant="b")
    job = client.post("/api/v1/jobs", json=BODIES["/api/v1/jobs"], headers=b).json()
    batch = client.post("/api/v1/batches", json=BODIES["/api/v1/batches"], headers=b).json()
    made = client.put("/api/v1/schedules/nightly", headers=b,
                      json=BODIES["/api/v1/schedules/{schedule_id}"])  # fmt: skip
    assert made.status_code == 201, made.text
    return client, {"job_id": job["id"], "batch_id": batch["id"], "schedule_id": "nightly",
                    "workflow_id": flow.id}  # fmt: skip


def fill(path: str, ids: dict[str, str]) -> str:
    for name in OWNED:
        path = path.replace("{" + name + "}", ids[name])
    assert "{" not in path, f"a route with a parameter this test does not know: {path}"
    return path


def body_for(template: str) -> Any:
    return BODIES.get(template)


def normalised(response: Any, resource_id: str) -> dict[str, Any]:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return {k: str(v).replace(resource_id, "<id>") for k, v in body.items()}


def test_every_route_is_walked() -> None:
    assert len(NAMED) >= 14  # jobs, batches, schedules: the walk found them
    assert ("GET", "/api/v1/jobs/{job_id}/stream") in NAMED


@pytest.mark.parametrize(("method", "template"), NAMED)
def test_s22_tenant_a_asks_for_tenant_b_jobs(
    owned: tuple[TestClient, dict[str, str]], method: str, template: str
) -> None:
    """404, with the very body an unknown id gets: nothing tells A that B's
    resource exists."""
    client, ids = owned
    param = next(n for n in OWNED if "{" + n + "}" in template)
    unknown = {**ids, param: str(uuid.uuid4()) if param != "schedule_id" else "no-such"}
    send = body_for(template)
    theirs = client.request(method, fill(template, ids), json=send, headers=auth("token-a"))
    nobody = client.request(method, fill(template, unknown), json=send, headers=auth("token-a"))
    assert normalised(theirs, ids[param]) == normalised(nobody, unknown[param])
    assert client.get(f"/api/v1/jobs/{ids['job_id']}", headers=auth("token-b")).json()[
        "state"] == "queued"  # fmt: skip


def test_s22_a_schedule_put_by_a_leaves_b_schedule_alone(
    owned: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = owned
    other = {**BODIES["/api/v1/schedules/{schedule_id}"], "cron": "5 5 * * *"}
    client.put("/api/v1/schedules/nightly", json=other, headers=auth("token-a"))
    theirs = client.get("/api/v1/schedules/nightly", headers=auth("token-b")).json()
    client.delete("/api/v1/schedules/nightly", headers=auth("token-a"))  # A's own
    assert theirs["cron"] == "0 0 * * *"
    assert theirs["tenant"] == "b"


NO_TOKEN = [{}, auth("wrong"), {"Authorization": "Basic dG9rZW4tYTo="},
            {"Authorization": "Bearer "}]  # fmt: skip


@pytest.mark.parametrize(("method", "template"), PROTECTED)
def test_s23_no_token(owned: tuple[TestClient, dict[str, str]], method: str, template: str) -> None:
    client, ids = owned
    for headers in NO_TOKEN:
        response = client.request(method, fill(template, ids), json=body_for(template),
                                  headers=headers)  # fmt: skip
        assert response.status_code == 401, (method, template, headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_s23_public_pages_and_health_need_no_token(
    owned: tuple[TestClient, dict[str, str]],
) -> None:
    client, ids = owned
    for method, template in ROUTES:
        if template in PUBLIC:
            path = template
            for name in ("job_id", "batch_id", "workflow_id"):
                path = path.replace("{" + name + "}", ids[name])
            assert client.request(method, path).status_code == 200, template
