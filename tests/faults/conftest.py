"""Fixtures of the fault scenarios: a ledger, worker processes, an App."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from offload import App
from tests.faults.ledger import Ledger
from tests.faults.workers import Workers


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.jsonl")


@pytest.fixture
def workers(durable_backend_url: str, ledger: Ledger, tmp_path: Path) -> Iterator[Workers]:
    spawned = Workers(durable_backend_url, ledger, tmp_path)
    yield spawned
    spawned.close()


@pytest.fixture
async def client(durable_backend_url: str) -> AsyncIterator[App]:
    app = App(durable_backend_url)
    yield app
    await app.close_async()
