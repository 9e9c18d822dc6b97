"""Unit tests run on the memory backend: fast, and the contract's own spec."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from offload import App


@pytest.fixture
async def mem_app() -> AsyncIterator[App]:
    application = App("memory://")
    try:
        yield application
    finally:
        await application.close_async()
