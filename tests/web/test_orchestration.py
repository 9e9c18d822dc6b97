"""Batches, schedules and pauses over HTTP: every endpoint, bad input, and what
a tenant token may see and do, against the ASGI app in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from offload import App
from offload.testing import drain
from tests.web.conftest import lease
from tests.web.test_api import TOKENS, assert_problem, auth

Client = Callable[..., TestClient]
ADD = {"task": "add", "args": {"a": 1, "b": 2}}


def create_batch(
    client: TestClient, jobs: int = 2, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = client.post("/api/v1/batches", json={"jobs": [ADD] * jobs, **body}, headers=headers)
    assert response.status_code == 201, response.text
    batch: dict[str, Any] = response.json()
    return batch


def named(problem: dict[str, Any], field: str) -> bool:
    """The problem names the field (a union adds its member: ``args.list[any]``)."""
    return any(e["field"] == field or e["field"].startswith(f"{field}.") for e in problem["errors"])


def run_batch(app: App, batch_id: str) -> None:
    """Run the batch's jobs, fire its continuations as a worker's scheduler would
    (a burst worker may stop before its scheduler gets to it), run those too."""

    async def go() -> None:
        try:
            await drain(app)
            await app.settle_batch_async(batch_id)
            await drain(app)
        finally:
            await app.close_async()

    asyncio.run(go())


def batch_job_ids(client: TestClient, batch_id: str, **headers: str) -> list[str]:
    jobs = client.get(f"/api/v1/batches/{batch_id}/jobs", headers=headers).json()["jobs"]
    return [j["id"] for j in jobs]


# batches ----------------------------------------------------------------------------


def test_create_answers_201_with_location_counts_and_continuations(
    app: App, client_for: Client
) -> None:
    client = client_for(app)
    body = {
        "jobs": [ADD, {"task": "report", "args": [2], "options": {"priority": 7}}],
        "then": [{"task": "report", "args": {"steps": 1}, "options": {"queue": "after"}}],
        "name": "nightly export",
    }
    response = client.post("/api/v1/batches", json=body)
    assert response.status_code == 201
    batch = response.json()
    assert response.headers["location"] == f"/api/v1/batches/{batch['id']}"
    assert uuid.UUID(batch["id"]).version == 7
    assert batch["name"] == "nightly export"
    assert batch["tenant"] == "default"
    assert (batch["total"], batch["ended"], batch["progress"], batch["done"]) == (2, 0, 0.0, False)
    assert batch["counts"] == {"scheduled": 0, "queued": 2, "running": 0, "succeeded": 0,
                               "cancelled": 0, "dead": 0}  # fmt: skip
    assert batch["then"] == [{"task": "report", "queue": "after"}]
    assert batch["finished_at"] is None
    assert client.get(response.headers["location"]).json() == batch
    jobs = client.get(f"/api/v1/batches/{batch['id']}/jobs").json()["jobs"]
    assert {(j["task"], j["priority"], j["batch_id"]) for j in jobs} == {
        ("add", 0, batch["id"]), ("report", 7, batch["id"])
    }  # fmt: skip


def test_ended_batch_shows_progress_and_fires_its_continuation(
    app: App, client_for: Client
) -> None:
    client = client_for(app)
    body = {"jobs": [ADD, {"task": "boom"}], "then": [{"task": "report", "args": {"steps": 1}}]}
    batch_id = client.post("/api/v1/batches", json=body).json()["id"]
    run_batch(app, batch_id)
    batch = client.get(f"/api/v1/batches/{batch_id}").json()
    assert (batch["total"], batch["ended"], batch["progress"], batch["done"]) == (2, 2, 1.0, True)
    assert (batch["counts"]["succeeded"], batch["counts"]["dead"]) == (1, 1)
    assert batch["finished_at"] is not None
    [then_id] = batch["continuation_ids"]
    assert client.get(f"/api/v1/jobs/{then_id}/output").json() == "done"
    late = client.post(f"/api/v1/batches/{batch_id}/jobs", json={"jobs": [ADD]})
    assert assert_problem(late, 409)["type"] == "urn:offload:problem:batch-finished"
    assert client.get(f"/api/v1/batches/{batch_id}").json()["total"] == 2


def test_append_adds_jobs_to_an_unfinished_batch(app: App, client_for: Client) -> None:
    client = client_for(app)
    batch_id = create_batch(client, 1)["id"]
    more = {"jobs": [ADD, {"task": "add", "args": [5, 6], "options": {"delay": 60}}]}
    response = client.post(f"/api/v1/batches/{batch_id}/jobs", json=more)
    assert response.status_code == 201
    added = response.json()
    assert [j["batch_id"] for j in added["jobs"]] == [batch_id, batch_id]
    assert [j["state"] for j in added["jobs"]] == ["queued", "scheduled"]
    assert added["batch"]["total"] == 3
    assert added["batch"]["counts"]["scheduled"] == 1
    assert set(batch_job_ids(client, batch_id)) >= {j["id"] for j in added["jobs"]}


def test_cancel_stops_waiting_jobs_and_asks_running_ones_to_stop(
    app: App, client_for: Client
) -> None:
    client = client_for(app)
    busy = create_batch(client, 2)["id"]
    lease(app)
    client.post(f"/api/v1/batches/{busy}/jobs", json={"jobs": [ADD]})
    response = client.post(f"/api/v1/batches/{busy}/cancel")
    assert response.status_code == 202
    assert (response.json()["counts"]["running"], response.json()["counts"]["cancelled"]) == (2, 1)
    jobs = client.get(f"/api/v1/batches/{busy}/jobs?state=running").json()["jobs"]
    assert [j["cancel_requested"] for j in jobs] == [True, True]
    idle = create_batch(client, 2)["id"]
    response = client.post(f"/api/v1/batches/{idle}/cancel")
    assert response.status_code == 200
    assert response.json()["counts"]["cancelled"] == 2
    assert response.json()["done"] is True


def test_list_pages_newest_first_and_filters_unfinished(app: App, client_for: Client) -> None:
    client = client_for(app)
    made = [create_batch(client, 1)["id"] for _ in range(3)]
    empty = create_batch(client, 0, then=[])["id"]  # no jobs: it finishes at once
    first = client.get("/api/v1/batches?limit=2").json()
    assert [b["id"] for b in first["batches"]] == [empty, made[2]]
    rest = client.get("/api/v1/batches", params={"limit": 2, "before": first["next_before"]}).json()
    assert [b["id"] for b in rest["batches"]] == [made[1], made[0]]
    assert client.get(f"/api/v1/batches?before={made[0]}").json() == {
        "batches": [], "next_before": None
    }  # fmt: skip
    unfinished = client.get("/api/v1/batches?unfinished=true").json()["batches"]
    assert [b["id"] for b in unfinished] == made[::-1]
    assert len(client.get("/api/v1/batches?unfinished=0").json()["batches"]) == 4


BATCH_ROUTES = [
    ("GET", "/api/v1/batches/{id}"),
    ("GET", "/api/v1/batches/{id}/jobs"),
    ("POST", "/api/v1/batches/{id}/jobs"),
    ("POST", "/api/v1/batches/{id}/cancel"),
    ("GET", "/api/v1/batches/{id}/stream"),
]


@pytest.mark.parametrize(("method", "route"), BATCH_ROUTES)
@pytest.mark.parametrize("batch_id", [str(uuid.uuid4()), "not-a-uuid", "%00", "'; drop"])
def test_unknown_or_malformed_batch_ids_are_404(
    app: App, client_for: Client, method: str, route: str, batch_id: str
) -> None:
    client = client_for(app)
    response = client.request(method, route.format(id=batch_id), json={"jobs": [ADD]})
    assert assert_problem(response, 404)["type"] == "urn:offload:problem:batch-not-found"


@pytest.mark.parametrize(
    ("body", "status", "kind", "field"),
    [
        (b"{not json", 400, "malformed-json", None),
        (b"[]", 422, "invalid-body", "body"),
        (b"{}", 422, "invalid-body", "jobs"),
        (b'{"jobs": {"task": "add"}}', 422, "invalid-body", "jobs"),
        (b'{"jobs": [{"task": "add", "args": [1, 2]}, {"task": "nope"}]}', 422, "unknown-task",
         "jobs.1.task"),
        (b'{"jobs": [{"task": "add", "args": {"a": "x", "b": 1}}]}', 422, "invalid-arguments",
         "jobs.0.args"),
        (b'{"jobs": [], "then": [{"task": "add", "args": [1]}]}', 422, "invalid-arguments",
         "then.0.args"),
        (b'{"jobs": [{"task": "add", "options": {"tenant": "b"}}]}', 422, "invalid-body",
         "jobs.0.options.tenant"),
        (b'{"jobs": [], "then": [{"task": "add", "options": {"delay": 5}}]}', 422, "invalid-body",
         "then.0.options.delay"),
        (b'{"jobs": [], "name": ""}', 422, "invalid-body", "name"),
        (b'{"jobs": [], "colour": "red"}', 422, "invalid-body", "colour"),
    ],
)  # fmt: skip
def test_bad_batch_bodies_are_4xx_problems_and_create_nothing(
    app: App, client_for: Client, body: bytes, status: int, kind: str, field: str | None
) -> None:
    client = client_for(app)
    response = client.post("/api/v1/batches", content=body,
                           headers={"content-type": "application/json"})  # fmt: skip
    problem = assert_problem(response, status)
    assert problem["type"] == f"urn:offload:problem:{kind}"
    if field is not None:
        assert named(problem, field)
    assert client.get("/api/v1/batches").json()["batches"] == []
    assert client.get("/api/v1/jobs").json()["jobs"] == []


def test_bad_append_bodies_and_query_parameters_are_4xx(app: App, client_for: Client) -> None:
    client = client_for(app)
    batch_id = create_batch(client, 1)["id"]
    jobs = f"/api/v1/batches/{batch_id}/jobs"
    assert_problem(client.post(jobs, json={"jobs": []}), 422)
    wrong = client.post(jobs, json={"jobs": [ADD, {"task": "add", "args": [1, "two"]}]})
    assert assert_problem(wrong, 422)["errors"][0]["field"] == "jobs.1.args"
    assert len(batch_job_ids(client, batch_id)) == 1
    for query, name in [("unfinished=maybe", "unfinished"), ("before=xyz", "before"),
                        ("limit=0", "limit"), ("tenant=%00", "tenant")]:  # fmt: skip
        assert assert_problem(client.get(f"/api/v1/batches?{query}"), 400)["parameter"] == name
    assert_problem(client.get(f"{jobs}?state=bogus"), 400)
    assert_problem(client.get(f"{jobs}?before=xyz"), 400)


@pytest.fixture
def two_tenants(app: App, client_for: Client) -> tuple[TestClient, str, str]:
    """A batch of tenant ``a`` and one of tenant ``b``, each with two jobs."""
    client = client_for(app, TOKENS)
    mine = create_batch(client, headers=auth("token-a"), tenant="b")
    theirs = create_batch(client, headers=auth("token-b"))
    assert (mine["tenant"], theirs["tenant"]) == ("a", "b")
    return client, mine["id"], theirs["id"]


@pytest.mark.parametrize(("method", "route"), BATCH_ROUTES)
def test_tenant_token_cannot_reach_another_tenants_batch(
    two_tenants: tuple[TestClient, str, str], method: str, route: str
) -> None:
    client, _, theirs = two_tenants
    path = route.format(id=theirs)
    response = client.request(method, path, headers=auth("token-a"), json={"jobs": [ADD]})
    assert assert_problem(response, 404)["type"] == "urn:offload:problem:batch-not-found"
    if path.endswith("/stream"):
        assert_problem(client.get(f"{path}?token=token-a"), 404)
    batch = client.get(f"/api/v1/batches/{theirs}", headers=auth("token-b")).json()
    assert batch["counts"]["queued"] == 2
    assert batch["total"] == 2


def test_tenant_token_lists_only_its_own_batches_and_their_jobs(
    two_tenants: tuple[TestClient, str, str],
) -> None:
    client, mine, theirs = two_tenants
    for query in ("", "?tenant=b"):
        listed = client.get(f"/api/v1/batches{query}", headers=auth("token-a")).json()
        assert [b["id"] for b in listed["batches"]] == [mine]
    everyone = client.get("/api/v1/batches", headers=auth("token-admin")).json()["batches"]
    assert [b["id"] for b in everyone] == [theirs, mine]
    only_b = client.get("/api/v1/batches?tenant=b", headers=auth("token-root")).json()["batches"]
    assert [b["id"] for b in only_b] == [theirs]
    jobs = client.get(f"/api/v1/batches/{mine}/jobs", headers=auth("token-a")).json()["jobs"]
    assert {j["tenant"] for j in jobs} == {"a"}
    added = client.post(f"/api/v1/batches/{mine}/jobs", json={"jobs": [ADD]},
                        headers=auth("token-a")).json()  # fmt: skip
    assert added["jobs"][0]["tenant"] == "a"


# schedules --------------------------------------------------------------------------

NIGHTLY = {"task": "add", "args": [1, 2], "cron": "0 3 * * *", "timezone": "Europe/Berlin"}


def test_put_creates_then_replaces_a_schedule(app: App, client_for: Client) -> None:
    client = client_for(app)
    created = client.put("/api/v1/schedules/nightly", json=NIGHTLY)
    assert created.status_code == 201
    assert created.headers["location"] == "/api/v1/schedules/nightly?tenant=default"
    schedule = created.json()
    assert (schedule["id"], schedule["tenant"], schedule["task"]) == ("nightly", "default", "add")
    assert schedule["args"] == {"a": 1, "b": 2}
    assert schedule["queue"] == "default"
    assert len(schedule["upcoming"]) == 5
    berlin = [datetime.fromisoformat(t).astimezone(ZoneInfo("Europe/Berlin"))
              for t in schedule["upcoming"]]  # fmt: skip
    assert [(t.hour, t.minute) for t in berlin] == [(3, 0)] * 5
    assert all(b - a == timedelta(days=1) for a, b in pairwise(berlin))
    assert schedule["upcoming"][0] == schedule["next_run_at"]
    assert client.get(created.headers["location"]).json() == schedule
    replaced = client.put("/api/v1/schedules/nightly?next=2", json={
        "task": "report", "args": {"steps": 3}, "cron": "*/15 * * * *", "unique": True,
        "options": {"queue": "reports", "priority": 5, "max_attempts": 2, "timeout": 30},
    })  # fmt: skip
    assert replaced.status_code == 200
    assert "location" not in replaced.headers
    again = replaced.json()
    assert (again["task"], again["cron"], again["timezone"], again["unique"]) == (
        "report", "*/15 * * * *", "UTC", True
    )  # fmt: skip
    assert (again["queue"], again["priority"], again["max_attempts"], again["timeout"]) == (
        "reports", 5, 2, 30
    )  # fmt: skip
    assert again["created_at"] == schedule["created_at"]
    first, second = (datetime.fromisoformat(t) for t in again["upcoming"])
    assert second - first == timedelta(minutes=15)
    assert first.minute % 15 == 0


def test_list_shows_every_schedule_with_its_next_firings(app: App, client_for: Client) -> None:
    client = client_for(app)
    client.put("/api/v1/schedules/nightly", json=NIGHTLY)
    client.put("/api/v1/schedules/often?tenant=acme",
               json={"task": "add", "args": [1, 1], "cron": "*/10 * * * * *"})  # fmt: skip
    listed = client.get("/api/v1/schedules?next=3").json()["schedules"]
    assert [(s["tenant"], s["id"]) for s in listed] == [("acme", "often"), ("default", "nightly")]
    assert [len(s["upcoming"]) for s in listed] == [3, 3]
    firings = [datetime.fromisoformat(t) for t in listed[0]["upcoming"]]
    assert [b - a for a, b in pairwise(firings)] == [timedelta(seconds=10)] * 2
    only = client.get("/api/v1/schedules?tenant=acme").json()["schedules"]
    assert [s["id"] for s in only] == ["often"]
    assert client.get("/api/v1/schedules/often").status_code == 404
    assert client.get("/api/v1/schedules/often?tenant=acme").json()["cron"] == "*/10 * * * * *"


def test_delete_removes_a_schedule_once(app: App, client_for: Client) -> None:
    client = client_for(app)
    client.put("/api/v1/schedules/nightly", json=NIGHTLY)
    gone = client.delete("/api/v1/schedules/nightly")
    assert gone.status_code == 204
    assert gone.content == b""
    body = assert_problem(client.delete("/api/v1/schedules/nightly"), 404)
    assert body["type"] == "urn:offload:problem:schedule-not-found"
    assert_problem(client.get("/api/v1/schedules/nightly"), 404)
    assert client.get("/api/v1/schedules").json() == {"schedules": [], "next_after": None}


@pytest.mark.parametrize(
    ("change", "kind", "field"),
    [
        ({"cron": "* * *"}, "invalid-cron", "cron"),
        ({"cron": "61 * * * *"}, "invalid-cron", "cron"),
        ({"cron": "0 0 30 2 *"}, "invalid-cron", "cron"),
        ({"timezone": "Mars/Olympus"}, "invalid-timezone", "timezone"),
        ({"timezone": "America"}, "invalid-timezone", "timezone"),
        ({"timezone": "../../etc/passwd"}, "invalid-timezone", "timezone"),
        ({"task": "nope"}, "unknown-task", "task"),
        ({"args": {"a": "x", "b": 1}}, "invalid-arguments", "args"),
        ({"args": [1, 2, 3]}, "invalid-arguments", "args"),
        ({"args": 5}, "invalid-body", "args"),
        ({"cron": 5}, "invalid-body", "cron"),
        ({"unique": "yes"}, "invalid-body", "unique"),
        ({"options": {"delay": 5}}, "invalid-body", "options.delay"),
        ({"options": {"tenant": "b"}}, "invalid-body", "options.tenant"),
        ({"cron": None}, "invalid-body", "cron"),
    ],
)
def test_bad_schedules_are_422_naming_the_field_and_store_nothing(
    app: App, client_for: Client, change: dict[str, Any], kind: str, field: str
) -> None:
    client = client_for(app)
    response = client.put("/api/v1/schedules/nightly", json=NIGHTLY | change)
    problem = assert_problem(response, 422)
    assert problem["type"] == f"urn:offload:problem:{kind}"
    assert named(problem, field)
    if kind == "invalid-cron":
        assert repr(change["cron"]) in problem["detail"]
    assert client.get("/api/v1/schedules").json() == {"schedules": [], "next_after": None}


def test_bad_schedule_ids_and_parameters_are_4xx(app: App, client_for: Client) -> None:
    client = client_for(app)
    json_type = {"content-type": "application/json"}
    assert_problem(client.put("/api/v1/schedules/nightly", content=b"{", headers=json_type), 400)
    for bad in ("%00", "a%7Fb", "x" * 201):
        assert (
            assert_problem(client.put(f"/api/v1/schedules/{bad}", json=NIGHTLY), 400)["parameter"]
            == "schedule_id"
        )
        assert_problem(client.get(f"/api/v1/schedules/{bad}"), 404)
        assert_problem(client.delete(f"/api/v1/schedules/{bad}"), 404)
    for query, name in [("next=0", "next"), ("next=51", "next"), ("next=x", "next"),
                        ("tenant=%01", "tenant")]:  # fmt: skip
        assert assert_problem(client.get(f"/api/v1/schedules?{query}"), 400)["parameter"] == name
    odd = "nightly run: 03:00 ü"
    assert client.put(f"/api/v1/schedules/{odd}", json=NIGHTLY).status_code == 201
    assert client.get("/api/v1/schedules").json()["schedules"][0]["id"] == odd


def test_tenant_token_works_only_on_its_own_schedules(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    mine = client.put("/api/v1/schedules/nightly?tenant=b", json=NIGHTLY, headers=auth("token-a"))
    assert mine.status_code == 201
    assert mine.json()["tenant"] == "a"
    theirs = client.put("/api/v1/schedules/nightly", json=NIGHTLY | {"cron": "0 4 * * *"},
                        headers=auth("token-b"))  # fmt: skip
    assert theirs.status_code == 201  # same id, another tenant: another schedule
    client.put("/api/v1/schedules/only-b", json=NIGHTLY, headers=auth("token-b"))
    for query in ("", "?tenant=b"):
        assert_problem(client.get(f"/api/v1/schedules/only-b{query}", headers=auth("token-a")), 404)
        assert_problem(
            client.delete(f"/api/v1/schedules/only-b{query}", headers=auth("token-a")), 404
        )
        listed = client.get(f"/api/v1/schedules{query}", headers=auth("token-a")).json()
        assert [(s["tenant"], s["id"]) for s in listed["schedules"]] == [("a", "nightly")]
    assert client.get("/api/v1/schedules/nightly", headers=auth("token-a")).json()["cron"] == (
        "0 3 * * *"
    )
    as_b = client.get("/api/v1/schedules", headers=auth("token-b")).json()["schedules"]
    assert [(s["id"], s["cron"]) for s in as_b] == [
        ("nightly", "0 4 * * *"),
        ("only-b", "0 3 * * *"),
    ]
    admin = client.get("/api/v1/schedules/only-b?tenant=b", headers=auth("token-admin"))
    assert admin.json()["tenant"] == "b"
    assert client.delete("/api/v1/schedules/nightly", headers=auth("token-a")).status_code == 204
    left = client.get("/api/v1/schedules", headers=auth("token-root")).json()["schedules"]
    assert [(s["tenant"], s["id"]) for s in left] == [("b", "nightly"), ("b", "only-b")]


# pause and resume --------------------------------------------------------------------


def scopes(client: TestClient, token: str = "token-admin") -> list[tuple[str | None, str | None]]:
    pauses = client.get("/api/v1/pauses", headers=auth(token)).json()["pauses"]
    return [(p["tenant"], p["queue"]) for p in pauses]


def test_admin_pauses_and_resumes_every_kind_of_scope(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    admin = auth("token-admin")
    for scope in ({}, {"queue": "mail"}, {"tenant": "a"}, {"tenant": "a", "queue": "mail"}):
        response = client.post("/api/v1/pause", json=scope, headers=admin)
        assert response.status_code == 200
        paused = response.json()
        assert (paused["tenant"], paused["queue"]) == (scope.get("tenant"), scope.get("queue"))
        assert paused["at"] is not None
    again = client.post("/api/v1/pause", json={"queue": "mail"}, headers=admin)
    assert again.status_code == 200  # idempotent
    assert scopes(client) == [(None, None), (None, "mail"), ("a", None), ("a", "mail")]
    resumed = client.post("/api/v1/resume", json={"queue": "mail"}, headers=admin)
    assert resumed.status_code == 204
    twice = client.post("/api/v1/resume", json={"queue": "mail"}, headers=admin)
    body = assert_problem(twice, 409)
    assert (body["type"], body["tenant"], body["queue"]) == ("urn:offload:problem:not-paused",
                                                            None, "mail")  # fmt: skip
    assert scopes(client) == [(None, None), ("a", None), ("a", "mail")]
    assert scopes(client, "token-root") == scopes(client)
    only_b = client.get("/api/v1/pauses?tenant=b", headers=admin).json()["pauses"]
    assert [(p["tenant"], p["queue"]) for p in only_b] == [(None, None)]


def test_a_paused_queue_is_not_leased_until_it_is_resumed(app: App, client_for: Client) -> None:
    client = client_for(app)
    assert client.post("/api/v1/pause", json={"queue": "default"}).status_code == 200
    job_id = client.post("/api/v1/jobs", json=ADD).json()["id"]
    assert lease(app) == []
    assert client.post("/api/v1/resume", json={"queue": "default"}).status_code == 204
    assert [j.id for j in lease(app)] == [job_id]


def test_tenant_token_pauses_only_scopes_of_its_own_tenant(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    mine = auth("token-a")
    for scope in ({}, {"queue": "default"}, {"tenant": "b"}, {"tenant": "b", "queue": "default"}):
        for action in ("pause", "resume"):
            response = client.post(f"/api/v1/{action}", json=scope, headers=mine)
            assert assert_problem(response, 403)["type"] == "urn:offload:problem:forbidden"
    assert scopes(client) == []
    client.post("/api/v1/pause", json={}, headers=auth("token-admin"))
    client.post("/api/v1/pause", json={"tenant": "b"}, headers=auth("token-admin"))
    assert_problem(client.post("/api/v1/resume", json={}, headers=mine), 403)
    for scope in ({"tenant": "a"}, {"tenant": "a", "queue": "default"}):
        assert client.post("/api/v1/pause", json=scope, headers=mine).status_code == 200
    # It sees what holds its jobs back, including the admin's pause of everything,
    # and nothing of tenant b's.
    assert scopes(client, "token-a") == [(None, None), ("a", None), ("a", "default")]
    assert scopes(client, "token-b") == [(None, None), ("b", None)]
    ignored = client.get("/api/v1/pauses?tenant=b", headers=mine).json()
    assert ignored == client.get("/api/v1/pauses", headers=mine).json()
    assert client.post("/api/v1/resume", json={"tenant": "a"}, headers=mine).status_code == 204
    assert scopes(client) == [(None, None), ("a", "default"), ("b", None)]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 400), (b"{", 400), (b"[]", 422), (b'{"queue": ""}', 422), (b'{"tenant": 5}', 422),
     (b'{"colour": "red"}', 422), (b'{"queue": "a\\u0000"}', 422)],
)  # fmt: skip
def test_bad_pause_bodies_are_4xx_and_pause_nothing(
    app: App, client_for: Client, body: bytes, status: int
) -> None:
    client = client_for(app)
    for action in ("pause", "resume"):
        response = client.post(f"/api/v1/{action}", content=body,
                               headers={"content-type": "application/json"})  # fmt: skip
        assert_problem(response, status)
    assert client.get("/api/v1/pauses").json() == {"pauses": []}


# who am I, pages ---------------------------------------------------------------------


def test_me_names_the_tokens_tenant(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    assert client.get("/api/v1/me", headers=auth("token-a")).json() == {
        "tenant": "a", "admin": False
    }  # fmt: skip
    for token in ("token-admin", "token-root"):
        assert client.get("/api/v1/me", headers=auth(token)).json() == {
            "tenant": None, "admin": True
        }  # fmt: skip
    assert_problem(client.get("/api/v1/me"), 401)
    assert client_for(app).get("/api/v1/me").json()["admin"] is True


def test_new_pages_open_and_are_in_the_navigation(app: App, client_for: Client) -> None:
    client = client_for(app, TOKENS)
    batch_id = str(uuid.uuid4())
    for path in ("/batches", f"/batches/{batch_id}", "/schedules", "/queues"):
        page = client.get(path)
        assert page.status_code == 200
        assert 'href="/batches"' in page.text
        assert 'href="/schedules"' in page.text
        assert 'href="/queues"' in page.text
    assert f'data-batch-id="{batch_id}"' in client.get(f"/batches/{batch_id}").text
    assert 'aria-current="page">Queues' in client.get("/queues").text
    assert_problem(client.get("/batches/nope"), 404)


def test_a_schedule_carries_its_description(app: App, client_for: Client) -> None:
    client = client_for(app)
    body = NIGHTLY | {"description": "Nightly totals for the finance team"}
    created = client.put("/api/v1/schedules/described", json=body).json()
    assert created["description"] == "Nightly totals for the finance team"
    listed = client.get("/api/v1/schedules").json()["schedules"]
    assert [s["description"] for s in listed if s["id"] == "described"] == [body["description"]]
    cleared = client.put("/api/v1/schedules/described", json=NIGHTLY).json()
    assert cleared["description"] is None
    too_long = client.put("/api/v1/schedules/described", json=NIGHTLY | {"description": "x" * 1001})
    assert too_long.status_code == 422
