"""The polling protocol's Retry-After comes from the settings (``001_``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from offload import App, Settings


def _app(tmp_path: Path) -> App:
    app = App(
        f"sqlite:///{tmp_path / 'retry.db'}",
        settings=Settings(retry_after=7, retry_after_max=12),
    )

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    return app


def _status(client: TestClient, **options: float) -> str:
    body = {"task": "add", "args": {"a": 1, "b": 2}, "options": options}
    created = client.post("/api/v1/jobs", json=body)
    assert created.status_code == 202, created.text
    response = client.get(created.headers["location"], follow_redirects=False)
    assert response.status_code == 204
    return response.headers["retry-after"]


def test_retry_after_and_its_cap_are_configurable(
    tmp_path: Path, client_for: Callable[..., TestClient]
) -> None:
    client = client_for(_app(tmp_path))
    assert _status(client) == "7"
    assert _status(client, delay=300) == "12"  # a scheduled job's wait, capped
