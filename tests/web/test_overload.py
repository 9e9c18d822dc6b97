"""Storage overloaded or down is a 503 with Retry-After, never a 500 (issue 13)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from offload import App
from tests.servers import free_port
from tests.servers.redis import redis_url
from tests.web.conftest import Server, make_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_many_requests_on_a_small_redis_pool_wait_instead_of_failing(
    request: pytest.FixtureRequest,
) -> None:
    from offload.web import create_app

    url = redis_url(request) + "&max_connections=2&timeout=20"
    app = make_app(url)

    async def burst(base: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # Each listing its own (limits differ): identical ones would share one read.
            calls = [client.get(f"/api/v1/jobs?limit={n + 1}") for n in range(60)]
            calls += [client.post("/api/v1/jobs", json={"task": "add", "args": [1, 2]})
                      for _ in range(20)]  # fmt: skip
            return [r.status_code for r in await asyncio.gather(*calls)]

    with Server(create_app(app)) as server:
        codes = asyncio.run(burst(server.url))
    assert sorted(set(codes)) == [200, 202]


def test_a_store_that_is_down_answers_503_with_retry_after(client_for: object) -> None:
    from starlette.testclient import TestClient

    from offload.web import create_app

    app: App = make_app(f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.5")
    with TestClient(create_app(app)) as client:
        answer = client.get("/api/v1/jobs")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["type"] == "urn:offload:problem:backend-unavailable"
