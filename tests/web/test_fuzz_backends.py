"""A fuzz of the HTTP API on the durable backends (issue 13): schemathesis over
every operation, then hostile bodies no schema describes (nesting 1,000 deep,
integers of 5,000 digits, 1e400, invalid UTF-8, the wrong content type) sent to
every operation that takes one. Nothing may answer 5xx: a bad request is the
caller's to fix, and a 500 would also reset a keep-alive connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from starlette.applications import Starlette
from starlette.testclient import TestClient

from offload.web import create_app
from tests.web.conftest import make_app

BACKENDS = ["sqlite", "redis", "postgres"]


def _url(name: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp / 'fuzz.db'}"
    if name == "redis":
        from tests.servers.redis import redis_url

        return redis_url(request)
    from tests.servers.postgres import postgres_url

    return postgres_url(request)


@pytest.fixture(scope="module", params=BACKENDS)
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    return create_app(make_app(_url(request.param, request, tmp_path_factory.mktemp("fuzz"))))


@pytest.fixture(scope="module")
def web_schema(web: Starlette) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", web).exclude(path_regex=r".*/stream$")


def test_no_operation_answers_5xx(web_schema: Any) -> None:
    """Every operation's generated cases (schemathesis mixes valid and invalid
    ones), run per backend inside one test: the backend fixture is per module."""
    operations = [result.ok() for result in web_schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:

        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        call()


# hostile bodies ----------------------------------------------------------------------

WRITES = [
    ("POST", "/api/v1/jobs"),
    ("POST", "/api/v1/batches"),
    ("PUT", "/api/v1/schedules/fuzz"),
    ("POST", "/api/v1/pause"),
    ("POST", "/api/v1/resume"),
    ("POST", "/api/v1/dead/purge"),
]


def _nested(depth: int) -> bytes:
    return b'{"task":"add","args":' + b"[" * depth + b"]" * depth + b"}"


BODIES = st.one_of(
    st.integers(900, 3000).map(_nested),
    st.integers(4301, 6000).map(lambda n: b'{"task":"add","args":{"a":' + b"7" * n + b',"b":1}}'),
    st.sampled_from([
        b'{"task":"add","args":{"a":1e400,"b":1}}',
        b'{"task":"add","args":[1,2],"options":{"delay":1e400}}',
        b'{"task":"add","args":[1,2],"options":{"priority":1e400}}',
        b'{"task":"add","args":[1,2],"options":{"tenant":"a\\u0000b"}}',
        b'{"task":"add","args":[1,2],"options":{"unique_key":"\\ud800"}}',
        b'{"task":"add\xff","args":[1,2]}',
        b'{"task":"add","args":["\xc3\x28",2]}',
        b"\xff\xfe\x00{",
        b"NaN",
        b"",
    ]),
    st.binary(max_size=200),
)  # fmt: skip
TYPES = st.sampled_from([
    "application/json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/json; charset=latin-1", None,
])  # fmt: skip


@pytest.fixture(scope="module")
def client(web: Starlette) -> Iterator[TestClient]:
    with TestClient(web, base_url="http://127.0.0.1") as c:
        yield c


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(WRITES), body=BODIES, content_type=TYPES)
def test_hostile_bodies_are_4xx(
    client: TestClient, target: tuple[str, str], body: bytes, content_type: str | None
) -> None:
    method, path = target
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(min_size=1, max_size=40))
def test_hostile_paths_are_4xx(client: TestClient, raw: bytes) -> None:
    quoted = "".join(f"%{b:02X}" for b in raw)
    for path in (f"/api/v1/jobs/{quoted}", f"/api/v1/schedules/{quoted}",
                 f"/api/v1/jobs?tenant={quoted}&queue={quoted}"):  # fmt: skip
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"task":"add","args":{"a":1e400,"b":1}}',
        b'{"task":"add","args":[1,2],"options":{"delay":1e400}}',
        b'{"task":"add","args":[1,2],"options":{"unique_key":"k\\u0000"}}',
        b'{"task":"add","args":[1,2],"options":{"priority":2147483648}}',
        b'{"task":"add","args":[1,2],"options":{"max_attempts":0}}',
    ],
)
def test_what_python_refuses_http_refuses_and_stores_nothing(
    client: TestClient, payload: bytes
) -> None:
    before = client.get("/api/v1/jobs?limit=500").json()["jobs"]
    response = client.post(
        "/api/v1/jobs", content=payload, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert client.get("/api/v1/jobs?limit=500").json()["jobs"] == before
