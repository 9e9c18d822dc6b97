"""Which jobs job_lease hands out first: queue order, priority, run_at, id."""

from __future__ import annotations

from datetime import timedelta

from offload.backends import Backend

from .helpers import enqueue, lease_when_due, must_get, new_job


async def _lease_ids(backend: Backend, queues: list[str], limit: int) -> list[str]:
    return [j.id for j in await backend.job_lease("w", queues, limit, 30.0)]


async def test_first_non_empty_queue_wins(backend: Backend) -> None:
    low = await enqueue(backend, queue="low")
    high = await enqueue(backend, queue="high")
    assert await _lease_ids(backend, ["high", "low"], 1) == [high.id]
    assert await _lease_ids(backend, ["high", "low"], 1) == [low.id]


async def test_queue_order_beats_priority(backend: Backend) -> None:
    urgent_low = await enqueue(backend, queue="low", priority=100)
    plain_high = await enqueue(backend, queue="high", priority=0)
    assert await _lease_ids(backend, ["high", "low"], 1) == [plain_high.id]
    assert await _lease_ids(backend, ["high", "low"], 1) == [urgent_low.id]


async def test_limit_spills_into_the_next_queue(backend: Backend) -> None:
    highs = await backend.job_enqueue_many([new_job(queue="high") for _ in range(2)])
    lows = await backend.job_enqueue_many([new_job(queue="low") for _ in range(2)])
    taken = await _lease_ids(backend, ["high", "low"], 3)
    assert taken == [highs[0].id, highs[1].id, lows[0].id]


async def test_higher_priority_first(backend: Backend) -> None:
    jobs = await backend.job_enqueue_many([new_job(priority=p) for p in (0, 5, -3, 9, 5)])
    by_priority = [jobs[3].id, jobs[1].id, jobs[4].id, jobs[0].id, jobs[2].id]
    assert await _lease_ids(backend, ["default"], 5) == by_priority


async def test_earlier_run_at_first_then_older_id(backend: Backend) -> None:
    now = await backend.now()
    at = [now - timedelta(seconds=s) for s in (10, 30, 20, 30)]
    jobs = await backend.job_enqueue_many([new_job(run_at=t) for t in at])
    expected = [jobs[1].id, jobs[3].id, jobs[2].id, jobs[0].id]
    assert await _lease_ids(backend, ["default"], 4) == expected


async def test_priority_beats_run_at(backend: Backend) -> None:
    now = await backend.now()
    old = await enqueue(backend, run_at=now - timedelta(hours=1), priority=0)
    new = await enqueue(backend, run_at=now - timedelta(seconds=1), priority=1)
    assert await _lease_ids(backend, ["default"], 2) == [new.id, old.id]


async def test_limit_is_respected(backend: Backend) -> None:
    await backend.job_enqueue_many([new_job() for _ in range(5)])
    assert len(await _lease_ids(backend, ["default"], 2)) == 2
    assert len(await _lease_ids(backend, ["default"], 10)) == 3
    assert await _lease_ids(backend, ["default"], 10) == []


async def test_unlisted_queue_is_never_leased(backend: Backend) -> None:
    await enqueue(backend, queue="other")
    assert await _lease_ids(backend, ["default"], 10) == []
    assert len(await _lease_ids(backend, ["other"], 10)) == 1


async def test_delayed_job_is_not_leased_before_it_is_due(backend: Backend) -> None:
    later = await enqueue(backend, delay=0.4)
    never = await enqueue(backend, delay=3600)
    assert await _lease_ids(backend, ["default"], 10) == []
    leased = await lease_when_due(backend, "default")
    assert leased.id == later.id
    assert leased.started_at is not None
    assert leased.started_at >= later.run_at
    assert await _lease_ids(backend, ["default"], 10) == []
    assert (await must_get(backend, never.id)).state == "scheduled"


async def test_due_job_waits_behind_nothing_not_due(backend: Backend) -> None:
    # A higher-priority job that is not yet due must not block a due one.
    blocked = await enqueue(backend, priority=10, delay=3600)
    ready = await enqueue(backend, priority=0)
    assert await _lease_ids(backend, ["default"], 1) == [ready.id]
    assert (await must_get(backend, blocked.id)).state == "scheduled"
