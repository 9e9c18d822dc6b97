"""The web server refuses what an attacker or a careless client sends it: issue 13.

Each test sends one request the server used to accept (or answer with a 500) and
checks that it is now refused with the right 4xx, and that nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from offload import App

Client = Callable[..., TestClient]
EVIL = "http://evil.example"


def test_a_cross_origin_pause_is_refused_and_nothing_pauses(app: App, client_for: Client) -> None:
    client = client_for(app)
    answer = client.post("/api/v1/pause", json={}, headers={"Origin": EVIL})
    assert answer.status_code == 403
    assert answer.json()["type"] == "urn:offload:problem:cross-site-request"
    assert app.pauses() == []


def test_a_cross_site_fetch_without_origin_is_refused(app: App, client_for: Client) -> None:
    client = client_for(app)
    answer = client.post("/api/v1/dead/purge", headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403


def test_same_origin_and_configured_origins_may_steer(app: App, client_for: Client) -> None:
    from offload.web import create_app

    client = client_for(app)
    own = client.post("/api/v1/pause", json={}, headers={"Origin": "http://testserver"})
    assert own.status_code == 200
    other = TestClient(create_app(app, allowed_origins=["https://ops.example"]))
    with other:
        ok = other.post("/api/v1/resume", json={}, headers={"Origin": "https://ops.example"})
    assert ok.status_code == 204


def test_a_text_plain_form_cannot_enqueue(app: App, client_for: Client) -> None:
    client = client_for(app)
    body = '{"task": "add", "args": {"a": 1, "b": 2}}'
    answer = client.post("/api/v1/jobs", content=body, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert no_jobs(app)


@pytest.mark.parametrize("kind", [None, "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_must_be_declared_json(app: App, client_for: Client, kind: str | None) -> None:
    client = client_for(app)
    headers = {"Content-Type": kind} if kind else {}
    answer = client.post("/api/v1/jobs", content=b'{"task": "add"}', headers=headers)
    assert answer.status_code == 415


def test_an_open_server_answers_only_to_loopback_hosts(app: App, client_for: Client) -> None:
    client = client_for(app)
    rebound = client.get("/api/v1/jobs", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400
    assert client.get("/api/v1/jobs", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/api/v1/jobs", headers={"Host": "localhost"}).status_code == 200


def test_with_tokens_or_allowed_hosts_other_names_are_served(app: App, client_for: Client) -> None:
    tokens = client_for(app, tokens={"t": "*"})
    named = tokens.get(
        "/api/v1/jobs", headers={"Host": "jobs.example", "Authorization": "Bearer t"}
    )
    assert named.status_code == 200
    from offload.web import create_app

    with TestClient(create_app(app, allowed_hosts=["jobs.example"])) as client:
        assert client.get("/api/v1/jobs", headers={"Host": "jobs.example"}).status_code == 200
        assert client.get("/api/v1/jobs", headers={"Host": "x.example"}).status_code == 400


def test_responses_carry_security_headers(app: App, client_for: Client) -> None:
    client = client_for(app)
    page = client.get("/jobs")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    api = client.get("/api/v1/jobs")
    assert api.headers["cache-control"] == "no-store"
    refused = client.post("/api/v1/jobs", content=b"x", headers={"Content-Type": "text/plain"})
    assert refused.headers["x-content-type-options"] == "nosniff"


def deep(n: int) -> str:
    return '{"task": "add", "args": {"a": ' + "[" * n + "]" * n + ', "b": 1}}'


@pytest.mark.parametrize(
    "body",
    [
        deep(1000),
        deep(100_000),
        '{"task": "add", "args": {"a": ' + "9" * 5000 + ', "b": 1}}',
        '{"task": "add", "args": {"a": 1e400, "b": 1}}',
        '{"task": "add", "args": {"a": "\\ud800", "b": 1}}',
    ],
    ids=["nested-1000", "nested-100000", "int-5000-digits", "float-overflow", "lone-surrogate"],
)
def test_unusable_json_is_a_400_and_the_connection_lives(
    app: App, client_for: Client, body: str
) -> None:
    client = client_for(app)
    answer = client.post("/api/v1/jobs", content=body.encode(),
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "urn:offload:problem:malformed-json"
    assert client.get("/api/v1/jobs").status_code == 200
    assert no_jobs(app)


def test_invalid_utf8_in_a_body_is_a_400(app: App, client_for: Client) -> None:
    client = client_for(app)
    body = b'{"task": "add", "args": {"a": 1, "b": 2}, "options": {"queue": "q\xff"}}'
    answer = client.post("/api/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert no_jobs(app)


@pytest.mark.parametrize("path", ["/api/v1/schedules/nightly%FF", "/api/v1/jobs?queue=%C3%28"])
def test_invalid_utf8_in_a_path_or_query_is_a_400(app: App, client_for: Client, path: str) -> None:
    client = client_for(app)
    answer = client.get(path)
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:offload:problem:invalid-encoding"


def test_a_schedule_id_with_a_slash_is_refused(app: App, client_for: Client) -> None:
    client = client_for(app)
    body = {"task": "add", "cron": "0 3 * * *", "args": {"a": 1, "b": 2}}
    answer = client.put("/api/v1/schedules/a%2Fb", json=body)
    assert answer.status_code in (400, 404)
    assert app.schedules() == []


def test_an_empty_tenant_token_is_refused(app: App) -> None:
    from offload.web import create_app

    with pytest.raises(ValueError, match="tenant"):
        create_app(app, tokens={"T": ""})


def test_a_tenant_token_does_not_see_worker_hosts(app: App, client_for: Client) -> None:
    from tests.web.conftest import lease

    app.get_task("add").options(tenant="acme").enqueue(1, 2)
    app.get_task("add").options(tenant="other", queue="default").enqueue(1, 2)
    lease(app)
    client = client_for(app, tokens={"ta": "acme", "admin": "*"})
    rows: list[dict[str, Any]] = client.get(
        "/api/v1/workers", headers={"Authorization": "Bearer ta"}
    ).json()["workers"]
    assert len(rows) == 1
    assert rows[0]["hostname"] is None
    assert rows[0]["pid"] is None
    assert rows[0]["running"] == 1


def no_jobs(app: App) -> bool:
    from offload.job import JobQuery

    return app.list_jobs(JobQuery()) == []


def test_tokens_are_redacted_in_logged_urls() -> None:
    import logging

    from offload.web.secrets import RedactTokens

    line = ("1.2.3.4", "GET", "/api/v1/stream?tenant=a&token=s3cr3t")
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s %s %s",
                               line, None)  # fmt: skip
    RedactTokens().filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "token=[redacted]" in record.getMessage()


def test_the_access_log_of_a_web_app_hides_stream_tokens(app: App, client_for: Client) -> None:
    import logging

    client_for(app)
    assert any(type(f).__name__ == "RedactTokens"
               for f in logging.getLogger("uvicorn.access").filters)  # fmt: skip


def test_tokens_come_from_the_environment_and_a_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from click.testing import CliRunner

    from offload.cli.web import web

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: served.update(app=asgi))
    monkeypatch.setenv("OFFLOAD_WEB_TOKENS", "env-token=acme")
    (tmp_path / "tokens").write_text("# ops\nfile-token=*\n")
    result = CliRunner().invoke(web, ["--backend", "memory://", "--token-file",
                                      str(tmp_path / "tokens")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert served["app"].state.offload_auth.tokens == {"env-token": "acme", "file-token": None}


def test_without_tokens_one_is_made_and_printed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from click.testing import CliRunner

    from offload.cli.web import web

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: served.update(app=asgi))
    monkeypatch.delenv("OFFLOAD_WEB_TOKENS", raising=False)
    result = CliRunner().invoke(web, ["--backend", "memory://", "--port", "8124"])
    assert result.exit_code == 0, result.output
    [made] = served["app"].state.offload_auth.tokens
    assert f"http://127.0.0.1:8124/?token={made}" in result.output
    opened = CliRunner().invoke(web, ["--backend", "memory://", "--open", "--host", "0.0.0.0"])
    assert "WARNING" in opened.output
    assert not served["app"].state.offload_auth.enabled


KEY = "a-signing-key-of-32-bytes-length"


def test_a_signed_read_only_token_sees_but_cannot_steer(app: App, client_for: Client) -> None:
    from offload.web.scoped import sign

    job = app.get_task("add").options(tenant="acme").enqueue(1, 2)
    client = signed(app)
    auth = {"Authorization": f"Bearer {sign(KEY, tenant='acme')}"}
    assert client.get(f"/api/v1/jobs/{job.id}", headers=auth).status_code == 200
    assert client.post(f"/api/v1/jobs/{job.id}/cancel", headers=auth).status_code == 403
    assert client.post("/api/v1/pause", json={"tenant": "acme"}, headers=auth).status_code == 403
    assert app.get_job(job.id).state == "queued"


def test_a_per_job_token_sees_only_its_jobs(app: App, client_for: Client) -> None:
    from offload.web.scoped import sign

    mine = app.get_task("add").options(tenant="acme").enqueue(1, 2)
    other = app.get_task("add").options(tenant="acme").enqueue(3, 4)
    client = signed(app)
    auth = {"Authorization": f"Bearer {sign(KEY, tenant='acme', jobs=[mine.id])}"}
    assert client.get(f"/api/v1/jobs/{mine.id}/status", headers=auth).status_code == 204
    assert client.get(f"/api/v1/jobs/{other.id}", headers=auth).status_code == 404
    listed = client.get("/api/v1/jobs", headers=auth).json()["jobs"]
    assert [j["id"] for j in listed] == [mine.id]
    assert client.get("/api/v1/batches", headers=auth).status_code == 403


def test_an_expired_or_forged_token_is_refused(app: App, client_for: Client) -> None:
    from offload.web.scoped import sign

    client = signed(app)
    expired = sign(KEY, tenant="acme", ttl=-1)
    forged = sign("another-key-of-sufficient-size", tenant=None, read_only=False)
    for token in (expired, forged):
        answer = client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401


def signed(app: App) -> TestClient:
    from offload.web import create_app

    client = TestClient(create_app(app, tokens={"admin": "*"}, signing_key=KEY))
    client.__enter__()
    return client


def test_a_new_stream_finds_the_feed_tail_in_a_few_one_row_reads() -> None:
    import asyncio

    from offload.web.stream import _feed_tail
    from tests.web.conftest import make_app

    app = make_app("memory://")
    app.get_task("add").enqueue_many([(i, i) for i in range(3000)])

    async def probe() -> tuple[int, int, int]:
        store = await app.backend()
        newest = (await store.event_feed(0, None, 10_000))[-1].id
        rows = 0
        feed = store.event_feed

        async def counted(after: int = 0, tenant: str | None = None, limit: int = 1000) -> Any:
            nonlocal rows
            found = await feed(after, tenant, limit)
            rows += len(found)
            return found

        store.event_feed = counted  # type: ignore[method-assign]
        return newest, await _feed_tail(store, None), rows

    newest, tail, rows = asyncio.run(probe())
    assert tail == newest
    assert rows <= 64  # paging to the end read every one of the 3,000 events
