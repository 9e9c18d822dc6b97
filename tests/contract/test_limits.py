"""Limits shared by every worker: concurrency slots with a hold time, a sliding
window of starts, and the snooze that gives a refused job back uncounted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from offload.backends import Backend
from offload.lifecycle import EventKind, State

from .helpers import enqueue_and_lease, eventually, kinds, must_get, near, opened_clone


async def test_slots_are_limited_per_key_and_renewable(backend: Backend) -> None:
    assert await backend.limit_acquire("k", "a", 2, 30) is True
    assert await backend.limit_acquire("k", "b", 2, 30) is True
    assert await backend.limit_acquire("k", "c", 2, 30) is False
    assert await backend.limit_acquire("k", "a", 2, 30) is True  # renewal, not a third
    assert await backend.limit_acquire("other", "c", 2, 30) is True


async def test_a_released_slot_is_free_again(backend: Backend) -> None:
    assert await backend.limit_acquire("k", "a", 1, 30) is True
    assert await backend.limit_acquire("k", "b", 1, 30) is False
    await backend.limit_release("k", "a")
    await backend.limit_release("k", "nobody")
    assert await backend.limit_acquire("k", "b", 1, 30) is True


async def test_a_slot_whose_time_ran_out_returns(backend: Backend) -> None:
    assert await backend.limit_acquire("k", "crashed", 1, 0.2) is True
    assert await backend.limit_acquire("k", "b", 1, 30) is False

    async def freed() -> bool:
        return await backend.limit_acquire("k", "b", 1, 30)

    await eventually(freed, what="the expired slot freed")


async def test_concurrent_acquires_never_exceed_the_limit(backend: Backend) -> None:
    async with opened_clone(backend) as other:
        results = await asyncio.gather(*(
            b.limit_acquire("k", f"h{i}", 3, 30) for i, b in enumerate([backend, other] * 10)
        ))  # fmt: skip
    assert results.count(True) == 3


async def test_rate_admits_limit_starts_per_window_then_says_how_long(backend: Backend) -> None:
    assert [await backend.rate_acquire("r", 3, 60) for _ in range(3)] == [0.0] * 3
    wait = await backend.rate_acquire("r", 3, 60)
    assert 55 < wait <= 60
    assert await backend.rate_acquire("other", 3, 60) == 0.0


async def test_rate_window_slides(backend: Backend) -> None:
    assert await backend.rate_acquire("r", 1, 0.3) == 0.0
    wait = await backend.rate_acquire("r", 1, 0.3)
    assert 0 < wait <= 0.3

    async def admitted() -> bool:
        return await backend.rate_acquire("r", 1, 0.3) == 0.0

    await eventually(admitted, what="a start admitted once the window slid")


async def test_concurrent_rate_acquires_admit_exactly_the_limit(backend: Backend) -> None:
    async with opened_clone(backend) as other:
        waits = await asyncio.gather(*(b.rate_acquire("r", 4, 60) for b in [backend, other] * 10))
    assert waits.count(0.0) == 4


async def test_snooze_waits_again_uncounted_with_an_event(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    before = await backend.now()
    snoozed = await backend.job_snooze(job.lease, 30, "concurrency limit of k")
    assert snoozed is not None
    stored = await must_get(backend, job.id)
    assert (stored.state, stored.attempts, stored.lease_token) == (State.SCHEDULED, 0, None)
    assert near(stored.run_at, before + timedelta(seconds=30))
    assert (await kinds(backend, job.id))[-1] is EventKind.SNOOZED
    latest = await backend.event_latest(job.id)
    assert latest is not None
    assert latest.data["reason"] == "concurrency limit of k"


async def test_snooze_is_fenced_by_the_lease(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_complete_many([(job.lease, None)])
    assert await backend.job_snooze(job.lease, 1, "late") is None
    assert (await must_get(backend, job.id)).state is State.SUCCEEDED


async def test_a_snoozed_job_is_leased_again_when_due(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_snooze(job.lease, 0.05, "rate")

    async def again() -> object:
        return await backend.job_lease("w", [job.queue], 1, 30)

    [leased] = await eventually(again, what="the snoozed job due again")
    assert (leased.id, leased.attempts) == (job.id, 1)
