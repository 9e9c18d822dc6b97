"""The HTTP API: every status of the polling protocol, resources, actions, bad
input and tenant scoping, against the ASGI app in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import App
from offload.job import WorkerInfo
from tests.web.conftest import lease, make_app, settle

PROBLEM = "application/problem+json"
Client = Callable[..., TestClient]


def enqueue(client: TestClient, task: str = "add", args: Any = None, **options: Any) -> str:
    body = {"task": task, "args": {"a": 1, "b": 2} if args is None else args, "options": options}
    response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


# the polling protocol ----------------------------------------------------------------


def test_enqueue_answers_202_with_location_of_the_status(app: App, client_for: Client) -> None:
    client = client_for(app)
    response = client.post("/api/v1/jobs", json={"task": "add", "args": {"a": 2, "b": 3}})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}/status"
    assert job["state"] == "queued"
    assert job["task"] == "add"
    assert job["args"] == {"a": 2, "b": 3}
    assert uuid.UUID(job["id"]).version == 7


def test_status_is_204_with_retry_after_until_it_ends_then_303_to_the_output(
    app: App, client_for: Client
) -> None:
    client = client_for(app)
    job_id = enqueue(client)
    waiting = client.get(f"/api/v1/jobs/{job_id}/status", follow_redirects=False)
    assert waiting.status_code == 204
    assert waiting.content == b""
    assert int(waiting.headers["retry-after"]) >= 1
    lease(app)
    running = client.get(f"/api/v1/jobs/{job_id}/status", follow_redirects=False)
    assert running.status_code == 204
    assert "retry-after" in running.headers


def test_succeeded_job_redirects_303_to_its_output(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client, args={"a": 20, "b": 22})
    settle(app)
    done = client.get(f"/api/v1/jobs/{job_id}/status", follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/api/v1/jobs/{job_id}/output"
    output = client.get(done.headers["location"])
    assert output.status_code == 200
    assert output.json() == 42
    followed = client.get(f"/api/v1/jobs/{job_id}/status")
    assert followed.json() == 42


def test_positional_args_are_accepted(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client, args=[4, 5])
    settle(app)
    assert client.get(f"/api/v1/jobs/{job_id}/output").json() == 9


def test_scheduled_job_asks_to_poll_again_when_it_is_due(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client, delay=30)
    response = client.get(f"/api/v1/jobs/{job_id}/status", follow_redirects=False)
    assert response.status_code == 204
    assert 25 <= int(response.headers["retry-after"]) <= 30


def test_dead_job_status_is_a_problem_with_state_and_error(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client, "boom", {})
    settle(app)
    body = assert_problem(client.get(f"/api/v1/jobs/{job_id}/status"), 409)
    assert body["state"] == "dead"
    assert body["type"] == "urn:offload:problem:job-dead"
    assert body["error"]["type"].endswith("ValueError")
    assert body["error"]["message"] == "it broke"
    assert "it broke" in body["detail"]
    assert assert_problem(client.get(f"/api/v1/jobs/{job_id}/output"), 409)["state"] == "dead"


def test_cancelled_job_status_is_a_problem(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client)
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
    body = assert_problem(client.get(f"/api/v1/jobs/{job_id}/status"), 409)
    assert body["state"] == "cancelled"
    assert body["type"] == "urn:offload:problem:job-cancelled"


def test_output_of_a_job_that_has_not_ended_is_409(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client)
    assert assert_problem(client.get(f"/api/v1/jobs/{job_id}/output"), 409)["state"] == "queued"


JOB_ROUTES = [
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/jobs/{id}/status"),
    ("GET", "/api/v1/jobs/{id}/output"),
    ("GET", "/api/v1/jobs/{id}/events"),
    ("GET", "/api/v1/jobs/{id}/stream"),
    ("POST", "/api/v1/jobs/{id}/cancel"),
    ("POST", "/api/v1/jobs/{id}/retry"),
]


@pytest.mark.parametrize(("method", "route"), JOB_ROUTES)
@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "1234", "%00", "'; drop"])
def test_unknown_or_malformed_ids_are_404(
    app: App, client_for: Client, method: str, route: str, job_id: str
) -> None:
    client = client_for(app)
    body = assert_problem(client.request(method, route.format(id=job_id)), 404)
    assert body["type"] == "urn:offload:problem:job-not-found"


# resources ---------------------------------------------------------------------------


def test_job_resource_has_events_result_and_progress(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client, "report", {"steps": 2})
    settle(app)
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["state"] == "succeeded"
    assert job["result"] == "done"
    assert job["progress"] == 1.0
    kinds = [e["kind"] for e in job["events"]]
    assert kinds == ["enqueued", "started", "progress", "progress", "succeeded"]
    events = client.get(f"/api/v1/jobs/{job_id}/events", params={"after": job["events"][1]["id"]})
    assert [e["kind"] for e in events.json()["events"]] == kinds[2:]


def test_list_filters_and_pages(app: App, client_for: Client) -> None:
    client = client_for(app)
    added = [enqueue(client) for _ in range(3)]
    other = enqueue(client, "report", {"steps": 1}, queue="other", tenant="acme")
    listed = client.get("/api/v1/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [other, *reversed(added)]
    by_task = client.get("/api/v1/jobs", params={"task": "add"}).json()["jobs"]
    assert {j["id"] for j in by_task} == set(added)
    assert [j["id"] for j in client.get("/api/v1/jobs?queue=other").json()["jobs"]] == [other]
    assert [j["id"] for j in client.get("/api/v1/jobs?tenant=acme").json()["jobs"]] == [other]
    assert client.get("/api/v1/jobs?state=running,dead").json()["jobs"] == []
    first = client.get("/api/v1/jobs", params={"limit": 3}).json()
    assert len(first["jobs"]) == 3
    rest = client.get("/api/v1/jobs", params={"limit": 3, "before": first["next_before"]}).json()
    assert [j["id"] for j in first["jobs"] + rest["jobs"]] == [j["id"] for j in listed]
    assert rest["next_before"] is None


def test_queues_workers_tenants_and_tasks(app: App, client_for: Client) -> None:
    client = client_for(app)
    enqueue(client)
    enqueue(client)
    enqueue(client, tenant="acme", queue="other")
    lease(app, "w-7")
    queues = {q["name"]: q for q in client.get("/api/v1/queues").json()["queues"]}
    assert queues["default"]["counts"]["running"] == 2
    assert queues["other"]["counts"]["queued"] == 1
    assert queues["default"]["total"] == 2
    workers = client.get("/api/v1/workers").json()["workers"]
    assert [(w["id"], w["running"]) for w in workers] == [("w-7", 2)]
    tenants = {t["name"]: t["jobs"] for t in client.get("/api/v1/tenants").json()["tenants"]}
    assert tenants == {"default": 2, "acme": 1}
    tasks = {t["name"]: t for t in client.get("/api/v1/tasks").json()["tasks"]}
    assert set(tasks) == {"add", "boom", "report"}
    assert tasks["add"]["args_schema"]["required"] == ["a", "b"]


def test_dead_letter_lists_retries_and_purges(app: App, client_for: Client) -> None:
    client = client_for(app)
    dead = [enqueue(client, "boom", {}) for _ in range(2)]
    enqueue(client)
    settle(app)
    assert {j["id"] for j in client.get("/api/v1/dead").json()["jobs"]} == set(dead)
    again = client.post(f"/api/v1/jobs/{dead[0]}/retry")
    assert again.status_code == 200
    assert again.json()["state"] == "queued"
    assert [j["id"] for j in client.get("/api/v1/dead").json()["jobs"]] == [dead[1]]
    purged = client.post("/api/v1/dead/purge", json={"older_than": 0})
    assert purged.json() == {"purged": 1}
    assert client.get("/api/v1/dead").json()["jobs"] == []
    assert client.post("/api/v1/dead/purge").json() == {"purged": 0}


def test_event_feed_follows_a_cursor(app: App, client_for: Client) -> None:
    client = client_for(app)
    enqueue(client)
    first = client.get("/api/v1/events").json()
    assert [e["kind"] for e in first["events"]] == ["enqueued"]
    settle(app)
    rest = client.get("/api/v1/events", params={"after": first["cursor"]}).json()
    assert [e["kind"] for e in rest["events"]] == ["started", "succeeded"]


# actions ----------------------------------------------------------------------------


def test_cancel_running_job_is_accepted_and_requested(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client)
    lease(app)
    response = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    assert response.json()["state"] == "running"


def test_cancel_and_retry_refuse_the_wrong_state(app: App, client_for: Client) -> None:
    client = client_for(app)
    job_id = enqueue(client)
    assert_problem(client.post(f"/api/v1/jobs/{job_id}/retry"), 409)
    settle(app)
    assert assert_problem(client.post(f"/api/v1/jobs/{job_id}/cancel"), 409)["state"] == (
        "succeeded"
    )


# bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 400, "malformed-json"),
        (b'{"task": "add", "args": {"a": NaN, "b": 1}}', 400, "malformed-json"),
        (b"\xff\xfe", 400, "malformed-json"),
        (b"[]", 422, "invalid-body"),
        (b'"add"', 422, "invalid-body"),
        (b"{}", 422, "invalid-body"),
        (b'{"task": "nope"}', 422, "unknown-task"),
        (b'{"task": "add", "args": {"a": "x", "b": 1}}', 422, "invalid-arguments"),
        (b'{"task": "add", "args": {"a": 1}}', 422, "invalid-arguments"),
        (b'{"task": "add", "args": [1, 2, 3]}', 422, "invalid-arguments"),
        (b'{"task": "add", "args": 5}', 422, "invalid-body"),
        (b'{"task": "add", "options": {"colour": "red"}}', 422, "invalid-body"),
        (b'{"task": "add", "options": {"delay": -1}}', 422, "invalid-body"),
        (b'{"task": "add", "options": {"priority": 1e99}}', 422, "invalid-body"),
        (b'{"task": "add", "options": {"max_attempts": 0}}', 422, "invalid-body"),
        (b'{"task": "add", "options": {"queue": ""}}', 422, "invalid-body"),
        (b'{"task": "add", "options": {"tenant": "a\\u0000b"}}', 422, "invalid-body"),
    ],
)
def test_bad_enqueue_bodies_are_4xx_problems(
    app: App, client_for: Client, body: bytes, status: int, kind: str
) -> None:
    client = client_for(app)
    response = client.post("/api/v1/jobs", content=body,
                           headers={"content-type": "application/json"})  # fmt: skip
    assert assert_problem(response, status)["type"] == f"urn:offload:problem:{kind}"
    assert "Traceback" not in response.text


def test_invalid_arguments_carry_the_payload_error_text(app: App, client_for: Client) -> None:
    client = client_for(app)
    response = client.post("/api/v1/jobs", json={"task": "add", "args": {"a": "x", "b": 1}})
    assert "invalid arguments for add.args: a:" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize(
    "query",
    ["state=bogus", "limit=0", "limit=501", "limit=abc", "before=xyz", "tenant=%00",
     "queue=" + "q" * 300],
)  # fmt: skip
def test_bad_query_parameters_are_400(app: App, client_for: Client, query: str) -> None:
    client = client_for(app)
    paths = ("/api/v1/jobs",) if query.startswith("state") else ("/api/v1/jobs", "/api/v1/dead")
    for path in paths:
        body = assert_problem(client.get(f"{path}?{query}"), 400)
        assert body["parameter"] == query.split("=")[0]
    assert_problem(client.get("/api/v1/events?after=-1"), 400)
    assert_problem(client.get("/api/v1/stream", headers={"Last-Event-ID": "x"}), 400)


def test_unknown_routes_and_methods_are_problems(app: App, client_for: Client) -> None:
    client = client_for(app)
    assert_problem(client.get("/api/v1/nothing"), 404)
    assert_problem(client.delete("/api/v1/jobs"), 405)


def test_unexpected_failure_is_a_500_problem_without_details(client_for: Client) -> None:
    app = make_app("memory://")

    async def broken(query: Any) -> Any:
        raise RuntimeError("secret internals")

    app.list_jobs_async = broken  # type: ignore[method-assign]
    client = client_for(app, raise_server_exceptions=False)
    response = client.get("/api/v1/jobs")
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert body["detail"] == "the server could not handle this request"


# auth -------------------------------------------------------------------------------

TOKENS = {"token-a": "a", "token-b": "b", "token-admin": None, "token-root": "*"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def scoped(app: App, client_for: Client) -> tuple[TestClient, str, str]:
    client = client_for(app, TOKENS)
    ids = []
    for token in ("token-a", "token-b"):
        response = client.post("/api/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 1}},
                               headers=auth(token))  # fmt: skip
        ids.append(response.json()["id"])
    return client, ids[0], ids[1]


LIST_ROUTES = ["/api/v1/jobs", "/api/v1/jobs?tenant=b", "/api/v1/dead?tenant=b"]


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_tenant_token_lists_only_its_own_jobs(
    scoped: tuple[TestClient, str, str], route: str
) -> None:
    client, _, _ = scoped
    jobs = client.get(route, headers=auth("token-a")).json()["jobs"]
    assert {j["tenant"] for j in jobs} <= {"a"}
    admin = client.get(route, headers=auth("token-admin")).json()["jobs"]
    if "dead" not in route and "tenant=b" not in route:
        assert {j["tenant"] for j in admin} == {"a", "b"}


@pytest.mark.parametrize(
    ("route", "key"),
    [("/api/v1/queues", "queues"), ("/api/v1/tenants", "tenants"), ("/api/v1/events", "events")],
)
def test_tenant_token_sees_only_its_own_counts_and_events(
    scoped: tuple[TestClient, str, str], route: str, key: str
) -> None:
    client, job_a, _ = scoped
    mine = client.get(f"{route}?tenant=b", headers=auth("token-a")).json()[key]
    everyone = client.get(route, headers=auth("token-root")).json()[key]
    if key == "queues":
        assert mine[0]["total"] == 1
        assert everyone[0]["total"] == 2
    elif key == "tenants":
        assert [t["name"] for t in mine] == ["a"]
        assert [t["name"] for t in everyone] == ["a", "b"]
    else:
        assert {e["job_id"] for e in mine} == {job_a}
        assert len({e["job_id"] for e in everyone}) == 2


def test_tenant_token_workers_are_its_own(app: App, scoped: tuple[TestClient, str, str]) -> None:
    client, job_a, _ = scoped
    lease(app)
    jobs = client.get("/api/v1/workers", headers=auth("token-a")).json()["workers"][0]["jobs"]
    assert jobs == [job_a]
    everyone = client.get("/api/v1/workers", headers=auth("token-admin")).json()["workers"]
    assert len(everyone[0]["jobs"]) == 2


def test_tenant_token_enqueues_into_its_own_tenant(scoped: tuple[TestClient, str, str]) -> None:
    client, _, _ = scoped
    body = {"task": "add", "args": {"a": 1, "b": 1}, "options": {"tenant": "b"}}
    response = client.post("/api/v1/jobs", json=body, headers=auth("token-a"))
    assert response.json()["tenant"] == "a"
    as_admin = client.post("/api/v1/jobs", json=body, headers=auth("token-admin"))
    assert as_admin.json()["tenant"] == "b"


def test_only_an_admin_may_purge(scoped: tuple[TestClient, str, str]) -> None:
    client, _, _ = scoped
    assert_problem(client.post("/api/v1/dead/purge", headers=auth("token-a")), 403)
    assert client.post("/api/v1/dead/purge", headers=auth("token-admin")).status_code == 200


def test_query_token_is_accepted_only_on_streams(scoped: tuple[TestClient, str, str]) -> None:
    client, _, _ = scoped
    assert_problem(client.get("/api/v1/jobs?token=token-a"), 401)
    assert_problem(client.get("/api/v1/stream?token=nope"), 401)


def test_pages_and_openapi_need_no_token(scoped: tuple[TestClient, str, str]) -> None:
    client, job_a, _ = scoped
    for path in ("/", "/jobs", f"/jobs/{job_a}", "/dead", "/widget-demo", "/openapi.json"):
        assert client.get(path).status_code == 200
    assert 'data-auth="required"' in client.get("/").text
    assert_problem(client.get("/jobs/nope"), 404)


def test_mounted_under_a_prefix_links_keep_the_prefix(app: App) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from offload.web import create_app

    outer = Starlette(routes=[Mount("/jobs-ui", create_app(app))])
    with TestClient(outer) as client:
        response = client.post("/jobs-ui/api/v1/jobs", json={"task": "add", "args": [1, 2]})
        assert response.headers["location"].startswith("/jobs-ui/api/v1/jobs/")
        assert client.get(response.headers["location"]).status_code == 204
        assert 'href="/jobs-ui/static/dashboard.css"' in client.get("/jobs-ui/").text


def test_registered_workers_show_to_an_admin_even_when_idle(
    app: App, scoped: tuple[TestClient, str, str]
) -> None:
    client, job_a, _ = scoped
    lease(app, "worker-1")

    async def register() -> None:
        try:
            backend = await app.backend()
            for wid in ("worker-1", "idle-9"):
                await backend.worker_beat(WorkerInfo(
                    id=wid, hostname="h", pid=7, queues=["default"], concurrency=4,
                    started_at=datetime(2026, 1, 1, tzinfo=UTC),
                ), ttl=60)  # fmt: skip
        finally:
            await app.close_async()

    asyncio.run(register())
    admin = client.get("/api/v1/workers", headers=auth("token-admin")).json()["workers"]
    assert [(w["id"], w["alive"], w["running"]) for w in admin] == [
        ("idle-9", True, 0), ("worker-1", True, 2)
    ]  # fmt: skip
    assert (admin[1]["hostname"], admin[1]["pid"], admin[1]["concurrency"]) == ("h", 7, 4)
    mine = client.get("/api/v1/workers", headers=auth("token-a")).json()["workers"]
    assert [(w["id"], w["jobs"]) for w in mine] == [("worker-1", [job_a])]
