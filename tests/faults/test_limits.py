"""Known limits found by the fault catalogue, held by tests so that the docs
(docs/reliability.md, "Findings") stay true: a change that lifts a limit fails
here and the docs are updated with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from uuid_utils import uuid7

from offload import App, NewJob

SKIP_WINDOW = 1000  # members of a queue one Redis lease call looks at (lease.lua)


@pytest.mark.slow
async def test_redis_paused_tenant_with_more_than_the_skip_window_at_the_head_holds_the_queue(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from tests.conftest import BACKENDS

    app = App(BACKENDS["redis"](tmp_path, request))
    backend = await app.backend()
    try:
        paused = [NewJob(str(uuid7()), "t", b"{}", tenant="acme", priority=10)
                  for _ in range(SKIP_WINDOW + 1)]  # fmt: skip
        for i in range(0, len(paused), 500):
            await backend.job_enqueue_many(paused[i : i + 500])
        [other] = await backend.job_enqueue_many([NewJob(str(uuid7()), "t", b"{}",
                                                         tenant="globex")])  # fmt: skip
        await backend.control_pause("acme", None)
        assert await backend.job_lease("w", ["default"], 10, 30.0) == []  # held back
        await backend.control_resume("acme", None)
        leased = await backend.job_lease("w", ["default"], SKIP_WINDOW + 2, 30.0)
        assert other.id in {j.id for j in leased}
    finally:
        await app.close_async()
