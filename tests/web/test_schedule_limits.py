"""The schedules list is paged (issue 13, item 4) and a tenant's schedules are
capped, so no listing or scheduler tick grows without bound."""

from __future__ import annotations

import asyncio

import pytest
from starlette.testclient import TestClient

from offload import App, LimitError, Settings
from offload.web import create_app
from tests.web.conftest import make_app


def _add_schedules(app: App, tenant: str, count: int) -> None:
    async def go() -> None:
        try:
            for n in range(count):
                await app.schedule_async(
                    f"s{n:02d}", "add", "0 3 * * *", args=(1, 2), tenant=tenant
                )
        finally:
            await app.close_async()

    asyncio.run(go())


def test_the_schedules_list_is_paged_in_order(app: App) -> None:
    _add_schedules(app, "acme", 5)
    _add_schedules(app, "zeta", 2)
    seen: list[str] = []
    with TestClient(create_app(app), base_url="http://127.0.0.1") as client:
        url = "/api/v1/schedules?limit=3"
        while True:
            page = client.get(url)
            assert page.status_code == 200
            body = page.json()
            seen += [f"{s['tenant']}/{s['id']}" for s in body["schedules"]]
            if body["next_after"] is None:
                break
            url = f"/api/v1/schedules?limit=3&after={body['next_after']}"
        assert client.get("/api/v1/schedules?after=nocursor").status_code == 400
    expected = [f"acme/s{n:02d}" for n in range(5)] + ["zeta/s00", "zeta/s01"]
    assert seen == expected


def test_a_tenants_schedules_are_capped_but_replacing_one_is_not(tmp_path: object) -> None:
    app = make_app("memory://")
    app.settings = Settings(max_schedules_per_tenant=2)
    _add_schedules(app, "acme", 2)

    async def go() -> None:
        try:
            await app.schedule_async("s00", "add", "0 4 * * *", args=(1, 2), tenant="acme")
            await app.schedule_async("other", "add", "0 4 * * *", args=(1, 2), tenant="zeta")
            with pytest.raises(LimitError, match="2 schedules"):
                await app.schedule_async("s99", "add", "0 4 * * *", args=(1, 2), tenant="acme")
        finally:
            await app.close_async()

    asyncio.run(go())
    with TestClient(create_app(app), base_url="http://127.0.0.1") as client:
        put = client.put(
            "/api/v1/schedules/s98?tenant=acme",
            json={"task": "add", "cron": "0 5 * * *", "args": {"a": 1, "b": 2}},
        )
    assert put.status_code == 409
    assert put.json()["type"].endswith("limit-reached")
