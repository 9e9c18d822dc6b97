"""Scenario 26 in its short form: a few hundred jobs under a seeded fault mix on
SQLite and Redis, and on a Redis of the soak's own with broker faults;
``scripts/soak`` runs the full form (docs/reliability.md)."""

from __future__ import annotations

import pytest

from tests.faults import soak
from tests.faults.soak_broker import KINDS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_s26_soak_short(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "redis":
        from tests.servers.redis import redis_url

        redis_url(request)  # the shared server answers, or a skip (a failure under CI)
    args = soak.parse([backend, "--jobs", "300", "--seed", "26", "--workers", "3",
                       "--timeout", "120"])  # fmt: skip
    assert await soak.run(args) == 0


async def test_s26_soak_short_with_broker_faults() -> None:
    """Steps of 40 jobs, so that a few hundred jobs meet several faults, some
    of them on the broker (restarted, crashed, cut off, slowed). Without
    redis-server the broker's start skips (a failure under CI)."""
    args = soak.parse(["redis", "--jobs", "300", "--seed", "26", "--workers", "3",
                       "--per-fault", "40", "--broker-faults", "--timeout", "120"])  # fmt: skip
    result = await soak.soak(args)
    assert not result.timed_out
    assert result.problems == []
    assert set(result.injected) & set(KINDS["redis"])  # the broker was faulted
