"""job_stats: ended jobs counted per queue, day and outcome, across purges."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, timedelta

from uuid_utils import uuid7

from offload.backends import Backend
from offload.job import DayCount, Job
from offload.lifecycle import State

from .helpers import BOOM, enqueue, enqueue_and_lease, lease_one, must_get


async def _succeeded(backend: Backend, queue: str, tenant: str = "default") -> Job:
    job = await enqueue_and_lease(backend, queue=queue, tenant=tenant)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    return await must_get(backend, job.id)


async def _dead(backend: Backend, queue: str, tenant: str = "default") -> Job:
    job = await enqueue_and_lease(backend, queue=queue, tenant=tenant)
    assert await backend.job_fail(job.lease, BOOM, None) is not None
    return await must_get(backend, job.id)


async def _cancelled(backend: Backend, queue: str, tenant: str = "default") -> Job:
    job = await enqueue(backend, queue=queue, tenant=tenant)
    assert await backend.job_cancel(job.id) is not None
    return await must_get(backend, job.id)


def _summed(rows: list[DayCount]) -> Counter[tuple[str, State]]:
    counts: Counter[tuple[str, State]] = Counter()
    for row in rows:
        assert row.count > 0
        counts[(row.queue, row.outcome)] += row.count
    return counts


async def _ended(backend: Backend, queue: str, tenant: str = "default") -> list[Job]:
    return [
        await _succeeded(backend, queue, tenant),
        await _succeeded(backend, queue, tenant),
        await _dead(backend, queue, tenant),
        await _cancelled(backend, queue, tenant),
    ]


async def test_stats_count_ended_jobs_only(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    await _ended(backend, queue)
    await enqueue(backend, queue=queue)
    await enqueue(backend, queue=queue)
    await lease_one(backend, [queue])  # one running, one queued: neither counted
    assert _summed(await backend.job_stats(None, queue)) == {
        (queue, State.SUCCEEDED): 2,
        (queue, State.DEAD): 1,
        (queue, State.CANCELLED): 1,
    }


async def test_totals_survive_purge(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    jobs = await _ended(backend, queue)
    before = _summed(await backend.job_stats(None, queue))
    cutoff = (await backend.now()) + timedelta(seconds=1)
    purged = await backend.job_purge(cutoff, [State.SUCCEEDED, State.CANCELLED])
    assert purged >= 3
    assert await backend.job_get(jobs[0].id) is None
    assert _summed(await backend.job_stats(None, queue)) == before
    await backend.job_purge(cutoff, [State.DEAD])
    assert _summed(await backend.job_stats(None, queue)) == before
    await _succeeded(backend, queue)
    after = _summed(await backend.job_stats(None, queue))
    assert after[(queue, State.SUCCEEDED)] == 3


async def test_a_purge_of_nothing_counts_nothing(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    done = await _succeeded(backend, queue)
    assert done.finished_at is not None
    assert await backend.job_purge(done.finished_at - timedelta(seconds=1), list(State)) == 0
    assert _summed(await backend.job_stats(None, queue)) == {(queue, State.SUCCEEDED): 1}


async def test_rows_carry_the_utc_day_the_job_ended(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    done = await _succeeded(backend, queue)
    assert done.finished_at is not None
    day = done.finished_at.astimezone(UTC).date()
    live = await backend.job_stats(None, queue)
    assert {(r.day, r.outcome) for r in live} == {(day, State.SUCCEEDED)}
    await backend.job_purge(done.finished_at + timedelta(seconds=1), [State.SUCCEEDED])
    kept = await backend.job_stats(None, queue)
    assert [(r.queue, r.day, r.outcome, r.count) for r in kept] == [
        (queue, day, State.SUCCEEDED, 1)
    ]


async def test_stats_are_scoped_by_tenant_and_queue(backend: Backend) -> None:
    mine, theirs, other_queue = f"q-{uuid7()}", f"q-{uuid7()}", f"q-{uuid7()}"
    acme, globex = f"acme-{uuid7()}", f"globex-{uuid7()}"
    await _succeeded(backend, mine, acme)
    await _dead(backend, other_queue, acme)
    await _succeeded(backend, theirs, globex)
    await _succeeded(backend, mine, globex)
    cutoff = (await backend.now()) + timedelta(seconds=1)
    await backend.job_purge(cutoff, [State.SUCCEEDED])
    await _succeeded(backend, mine, acme)
    assert _summed(await backend.job_stats(acme, None)) == {
        (mine, State.SUCCEEDED): 2,
        (other_queue, State.DEAD): 1,
    }
    assert _summed(await backend.job_stats(acme, mine)) == {(mine, State.SUCCEEDED): 2}
    assert _summed(await backend.job_stats(globex, None)) == {
        (theirs, State.SUCCEEDED): 1,
        (mine, State.SUCCEEDED): 1,
    }
    assert _summed(await backend.job_stats(None, mine)) == {(mine, State.SUCCEEDED): 3}
