"""Shared fixtures: the backend under test, parametrised over every backend.

``backend_url`` is the single place a backend joins the contract suite: add its
provider to ``BACKENDS`` and every contract test runs against it unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from offload import App
from offload.backends import Backend, create_backend


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return "memory://"


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return f"sqlite:///{tmp_path / f'offload-{uuid.uuid4().hex[:8]}.db'}"


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    from tests.servers.postgres import postgres_clean_url

    return postgres_clean_url(request)


def _redis(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    from tests.servers.redis import redis_url

    return redis_url(request)


def _redis_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    from tests.servers.redis import redis_cluster_url

    return redis_cluster_url(request)


def _azure(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    from tests.servers.azurite import azure_url

    return azure_url(request)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], str]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
    "redis": _redis,
    "redis_cluster": _redis_cluster,
    "azure": _azure,
}
# azure: Azurite runs in memory, but it outlives every backend instance and
# process of a test session, which is what these tests check.
DURABLE = ("sqlite", "postgres", "redis", "redis_cluster", "azure")


@pytest.fixture(params=list(BACKENDS))
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, isolated URL for each backend in turn."""
    name: str = request.param
    return BACKENDS[name](tmp_path, request)


@pytest.fixture(params=list(DURABLE))
def durable_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    name: str = request.param
    return BACKENDS[name](tmp_path, request)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return _sqlite(tmp_path, None)  # type: ignore[arg-type]


@pytest.fixture
async def backend(backend_url: str) -> AsyncIterator[Backend]:
    instance = create_backend(backend_url)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[App]:
    application = App(backend_url)
    try:
        yield application
    finally:
        await application.close_async()
