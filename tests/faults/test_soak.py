"""Scenario 26 in its short form: a few hundred jobs under a seeded fault mix on
SQLite and Redis; ``scripts/soak`` runs the full form (docs/reliability.md)."""

from __future__ import annotations

import pytest

from tests.faults import soak

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_s26_soak_short(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "redis":
        from tests.servers.redis import redis_url

        redis_url(request)  # the shared server answers, or a skip (a failure under CI)
    args = soak.parse([backend, "--jobs", "300", "--seed", "26", "--workers", "3",
                       "--timeout", "120"])  # fmt: skip
    assert await soak.run(args) == 0
