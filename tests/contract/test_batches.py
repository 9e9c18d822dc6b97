"""Batches: a record plus the jobs enqueued with its id; counts are read from
the jobs themselves, and finishing is a one-time flag."""

from __future__ import annotations

import asyncio

from uuid_utils import uuid7

from offload.backends import Backend
from offload.job import JobQuery, NewBatch
from offload.lifecycle import State

from .helpers import BOOM, new_job, opened_clone


def batch(tenant: str = "default", **fields: object) -> NewBatch:
    return NewBatch(id=str(uuid7()), tenant=tenant, **fields)  # type: ignore[arg-type]


async def test_create_and_get_round_trip(backend: Backend) -> None:
    created = await backend.batch_create(batch(name="import", then=b"[1]", meta={"k": "v"}))
    got = await backend.batch_get(created.id)
    assert got is not None
    for b in (created, got):
        assert (b.tenant, b.name, b.then, b.meta) == ("default", "import", b"[1]", {"k": "v"})
        assert b.finished_at is None
        assert b.continuation_ids == []
        assert b.total == 0
        assert not b.ended
    assert got.created_at == created.created_at


async def test_creating_an_existing_id_returns_the_stored_batch(backend: Backend) -> None:
    first = await backend.batch_create(batch(name="one"))
    again = await backend.batch_create(NewBatch(id=first.id, name="two"))
    assert (again.id, again.name) == (first.id, "one")


async def test_counts_follow_the_states_of_its_jobs(backend: Backend) -> None:
    b = await backend.batch_create(batch())
    queue = f"q-{uuid7()}"
    jobs = await backend.job_enqueue_many(
        [new_job(queue=queue, batch_id=b.id, max_attempts=1) for _ in range(4)]
        + [new_job(queue=queue)]  # not in the batch
    )
    assert all(j.batch_id == b.id for j in jobs[:4])
    assert jobs[4].batch_id is None
    got = await backend.batch_get(b.id)
    assert got is not None
    assert got.counts == {State.QUEUED: 4}
    assert got.total == 4
    leased = await backend.job_lease("w", [queue], 3, 30.0)
    ours = [j for j in leased if j.batch_id == b.id]
    await backend.job_complete_many([(ours[0].lease, None)])
    await backend.job_fail(ours[1].lease, BOOM, None)
    got = await backend.batch_get(b.id)
    assert got is not None
    assert not got.ended
    assert sum(got.counts.values()) == 4
    assert got.counts[State.SUCCEEDED] == 1
    assert got.counts[State.DEAD] == 1
    for j in jobs[:4]:
        await backend.job_cancel(j.id)
    for j in await backend.job_list(JobQuery(batch_id=b.id, states=frozenset({State.RUNNING}))):
        await backend.job_cancel_confirm(next(x.lease for x in leased if x.id == j.id))
    got = await backend.batch_get(b.id)
    assert got is not None
    assert got.ended, got.counts


async def test_job_list_filters_by_batch(backend: Backend) -> None:
    b = await backend.batch_create(batch())
    mine = await backend.job_enqueue_many([new_job(batch_id=b.id) for _ in range(3)])
    await backend.job_enqueue_many([new_job()])
    listed = await backend.job_list(JobQuery(batch_id=b.id, limit=10))
    assert {j.id for j in listed} == {j.id for j in mine}


async def test_batches_are_scoped_by_tenant_and_listed_newest_first(backend: Backend) -> None:
    a1 = await backend.batch_create(batch("acme"))
    g1 = await backend.batch_create(batch("globex"))
    a2 = await backend.batch_create(batch("acme"))
    assert await backend.batch_get(a1.id, "globex") is None
    assert (await backend.batch_get(a1.id, "acme")) is not None
    assert [b.id for b in await backend.batch_list("acme")] == [a2.id, a1.id]
    assert [b.id for b in await backend.batch_list()] == [a2.id, g1.id, a1.id]
    assert [b.id for b in await backend.batch_list("acme", before_id=a2.id)] == [a1.id]
    assert [b.id for b in await backend.batch_list(limit=1)] == [a2.id]


async def test_finish_happens_once_and_unfinished_lists_the_rest(backend: Backend) -> None:
    done = await backend.batch_create(batch())
    open_ = await backend.batch_create(batch())
    assert await backend.batch_finish(done.id, ["c1", "c2"]) is True
    assert await backend.batch_finish(done.id, ["c3"]) is False
    assert await backend.batch_finish(str(uuid7()), []) is False
    got = await backend.batch_get(done.id)
    assert got is not None
    assert got.finished_at is not None
    assert got.continuation_ids == ["c1", "c2"]
    assert [b.id for b in await backend.batch_list(unfinished=True)] == [open_.id]


async def test_concurrent_finishes_have_one_winner(backend: Backend) -> None:
    b = await backend.batch_create(batch())
    async with opened_clone(backend) as other:
        results = await asyncio.gather(
            *(x.batch_finish(b.id, [f"c{i}"]) for i, x in enumerate([backend, other] * 5))
        )
    assert results.count(True) == 1
