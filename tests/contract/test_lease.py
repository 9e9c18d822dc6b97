"""job_lease: START, the attempt count, fresh tokens, and exclusivity."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from offload.backends import Backend
from offload.job import Lease
from offload.lifecycle import State

from .helpers import enqueue, lease_one, must_get, near, new_job, opened_clone


async def test_lease_starts_the_job_and_counts_the_attempt(backend: Backend) -> None:
    job = await enqueue(backend)
    before = await backend.now()
    leased = await lease_one(backend, lease_for=20.0, worker="w-7")
    assert leased.id == job.id
    assert (leased.state, leased.attempts, leased.worker_id) == (State.RUNNING, 1, "w-7")
    assert leased.lease_token
    assert near(leased.lease_expires_at, before + timedelta(seconds=20))
    assert near(leased.started_at, before)
    assert leased.lease == Lease(job.id, leased.lease_token)
    stored = await must_get(backend, job.id)
    assert (stored.state, stored.lease_token, stored.attempts) == (
        State.RUNNING, leased.lease_token, 1,
    )  # fmt: skip


async def test_a_running_job_is_not_leased_again(backend: Backend) -> None:
    await enqueue(backend)
    await lease_one(backend)
    assert await backend.job_lease("worker-2", ["default"], 10, 30.0) == []


async def test_nothing_to_lease_returns_empty(backend: Backend) -> None:
    assert await backend.job_lease("w", ["default"], 5, 30.0) == []
    await enqueue(backend, queue="elsewhere")
    assert await backend.job_lease("w", ["default", "other"], 5, 30.0) == []


async def test_each_lease_issues_a_fresh_token(backend: Backend) -> None:
    await enqueue(backend)
    first = await lease_one(backend)
    assert await backend.job_requeue(first.lease, None) is not None
    second = await lease_one(backend)
    assert second.id == first.id
    assert second.lease_token
    assert second.lease_token != first.lease_token


async def test_tokens_differ_between_jobs(backend: Backend) -> None:
    await backend.job_enqueue_many([new_job() for _ in range(5)])
    jobs = await backend.job_lease("w", ["default"], 5, 30.0)
    assert len({j.lease_token for j in jobs}) == 5


async def test_concurrent_leases_never_hand_out_a_job_twice(backend: Backend) -> None:
    await backend.job_enqueue_many([new_job() for _ in range(30)])
    async with (
        opened_clone(backend) as b2,
        opened_clone(backend) as b3,
        opened_clone(backend) as b4,
    ):
        rounds = await asyncio.gather(
            *(
                b.job_lease(f"w{i}", ["default"], 10, 30.0)
                for i, b in enumerate([backend, b2, b3, b4, backend, b2])
            )
        )
    rest = await backend.job_lease("sweeper", ["default"], 30, 30.0)
    ids = [job.id for jobs in [*rounds, rest] for job in jobs]
    assert len(ids) == len(set(ids)) == 30
