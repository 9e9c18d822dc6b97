"""unique_key: at most one live job per (tenant, key)."""

from __future__ import annotations

import asyncio

from offload.backends import Backend
from offload.job import JobQuery
from offload.lifecycle import State

from .helpers import BOOM, enqueue, lease_one, must_get, new_job, opened_clone


async def _count(backend: Backend, tenant: str = "default") -> int:
    return len(await backend.job_list(JobQuery(tenant=tenant, limit=1000)))


async def test_same_key_returns_the_existing_live_job(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="report-1", payload=b'{"v":1}')
    second = await enqueue(backend, unique_key="report-1", payload=b'{"v":2}')
    assert second.id == first.id
    assert second.payload == b'{"v":1}'
    assert await _count(backend) == 1


async def test_a_running_job_still_holds_its_key(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="k")
    await lease_one(backend)
    again = await enqueue(backend, unique_key="k")
    assert (again.id, again.state) == (first.id, State.RUNNING)


async def test_same_key_twice_in_one_batch_stores_one_job(backend: Backend) -> None:
    a, b = await backend.job_enqueue_many([new_job(unique_key="k"), new_job(unique_key="k")])
    assert a.id == b.id
    assert await _count(backend) == 1


async def test_keys_are_scoped_by_tenant(backend: Backend) -> None:
    acme = await enqueue(backend, unique_key="k", tenant="acme")
    globex = await enqueue(backend, unique_key="k", tenant="globex")
    assert acme.id != globex.id
    assert (await _count(backend, "acme"), await _count(backend, "globex")) == (1, 1)


async def test_different_keys_and_no_key_are_not_deduplicated(backend: Backend) -> None:
    ids = {(await enqueue(backend, unique_key=k)).id for k in ("a", "b", None, None)}
    assert len(ids) == 4


async def test_a_new_job_is_allowed_once_the_old_one_succeeded(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="k")
    leased = await lease_one(backend)
    assert await backend.job_complete_many([(leased.lease, None)]) == [True]
    second = await enqueue(backend, unique_key="k")
    assert second.id != first.id
    assert second.state is State.QUEUED
    assert await enqueue(backend, unique_key="k") == await must_get(backend, second.id)


async def test_a_new_job_is_allowed_once_the_old_one_was_cancelled(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="k", delay=3600)
    assert await backend.job_cancel(first.id) is not None
    assert (await enqueue(backend, unique_key="k")).id != first.id


async def test_a_new_job_is_allowed_once_the_old_one_is_dead(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="k")
    leased = await lease_one(backend)
    assert await backend.job_fail(leased.lease, BOOM, None) is not None
    assert (await enqueue(backend, unique_key="k")).id != first.id


async def test_a_retry_waiting_job_still_holds_its_key(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="k")
    leased = await lease_one(backend)
    assert await backend.job_fail(leased.lease, BOOM, 3600.0) is not None
    assert (await enqueue(backend, unique_key="k")).id == first.id


async def test_concurrent_enqueues_of_one_key_yield_one_job(backend: Backend) -> None:
    async with opened_clone(backend) as b2, opened_clone(backend) as b3:
        writers = [backend, b2, b3] * 4
        jobs = await asyncio.gather(
            *(w.job_enqueue_many([new_job(unique_key="race")]) for w in writers)
        )
    assert len({batch[0].id for batch in jobs}) == 1
    assert await _count(backend) == 1


async def test_an_enqueue_says_when_it_returned_an_existing_job(backend: Backend) -> None:
    first = await enqueue(backend, unique_key="dup")
    assert first.duplicate is False
    again = await enqueue(backend, unique_key="dup")
    assert (again.id, again.duplicate) == (first.id, True)
    assert (await must_get(backend, first.id)).duplicate is False  # not stored


async def test_an_enqueue_of_a_stored_id_is_a_duplicate(backend: Backend) -> None:
    job = new_job()
    (stored,) = await backend.job_enqueue_many([job])
    (again,) = await backend.job_enqueue_many([job])
    assert (stored.duplicate, again.duplicate, again.id) == (False, True, stored.id)


async def test_one_id_twice_in_one_call_stores_it_once_and_says_so(backend: Backend) -> None:
    """A retried bulk call may carry an id twice: the first is stored, the
    second comes back as that job, marked, as it would from a second call."""
    job, other = new_job(), new_job()
    first, middle, again = await backend.job_enqueue_many([job, other, job])
    assert (first.duplicate, middle.duplicate, again.duplicate) == (False, False, True)
    assert (again.id, first.id) == (job.id, job.id)
    assert await _count(backend) == 2
