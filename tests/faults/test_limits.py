"""Findings of the fault catalogue about limits, held by tests so that the
docs (docs/reliability.md, "Findings") stay true."""

from __future__ import annotations

from pathlib import Path

import pytest
from uuid_utils import uuid7

from offload import App, NewJob

PARK_BOUND = 1000  # paused jobs one Redis lease call moves out of a queue (lease.lua)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sqlite", "postgres", "redis", "redis_cluster"])
async def test_a_paused_tenants_backlog_at_the_head_of_a_shared_queue_holds_no_one_else(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Twice the Redis lease's parking bound of a paused tenant's jobs sit ahead
    of another tenant's job in one queue: that job is leased within a few calls,
    none of the paused ones is, and after the resume every one of them is."""
    from tests.conftest import BACKENDS

    app = App(BACKENDS[name](tmp_path, request))
    backend = await app.backend()
    try:
        paused = [NewJob(str(uuid7()), "t", b"{}", tenant="acme", priority=10)
                  for _ in range(2 * PARK_BOUND + 1)]  # fmt: skip
        for i in range(0, len(paused), 500):
            await backend.job_enqueue_many(paused[i : i + 500])
        [other] = await backend.job_enqueue_many([NewJob(str(uuid7()), "t", b"{}",
                                                         tenant="globex")])  # fmt: skip
        await backend.control_pause("acme", None)
        leased: list[str] = []
        for _ in range(4):  # the bound parks 1,000 a call: the third call reaches it
            leased += [j.id for j in await backend.job_lease("w", ["default"], 10, 30.0)]
            if leased:
                break
        assert leased == [other.id]
        await backend.control_resume("acme", None)
        back: set[str] = set()
        for _ in range(10):
            got = await backend.job_lease("w", ["default"], 1000, 30.0)
            if not got:
                break
            back |= {j.id for j in got}
        assert back == {j.id for j in paused}
    finally:
        await app.close_async()
