"""Storage outlives an instance (durable backends) and is shared by clones (all)."""

from __future__ import annotations

from offload import lifecycle as lc
from offload.backends import Backend, create_backend
from offload.lifecycle import State

from .helpers import enqueue, kinds, lease_one, must_get, opened_clone


async def test_a_fresh_instance_sees_what_a_closed_one_wrote(durable_backend_url: str) -> None:
    first = create_backend(durable_backend_url)
    await first.open()
    try:
        waiting = await enqueue(first, queue="later", payload=b"\x00\xffraw")
        done = await enqueue(first)
        leased = await lease_one(first)
        assert await first.job_complete_many([(leased.lease, b'"ok"')]) == [True]
        written = [await must_get(first, j.id) for j in (waiting, done)]
    finally:
        await first.close()

    second = create_backend(durable_backend_url)
    await second.open()
    try:
        assert [await must_get(second, j.id) for j in (waiting, done)] == written
        assert await kinds(second, done.id) == [
            *lc.ENQUEUE.events, *lc.START.events, *lc.SUCCEED.events,
        ]  # fmt: skip
        again = await lease_one(second, ["later"])
        assert (again.id, again.payload) == (waiting.id, b"\x00\xffraw")
    finally:
        await second.close()


async def test_open_is_idempotent_and_keeps_data(durable_backend_url: str) -> None:
    backend = create_backend(durable_backend_url)
    await backend.open()
    try:
        job = await enqueue(backend)
        await backend.open()
        assert (await must_get(backend, job.id)).state is State.QUEUED
    finally:
        await backend.close()


async def test_a_clone_shares_storage(backend: Backend) -> None:
    async with opened_clone(backend) as other:
        job = await enqueue(other, tenant="acme")
        assert await must_get(backend, job.id, "acme") == job
        leased = await lease_one(backend)
        assert (await must_get(other, job.id)).lease_token == leased.lease_token
        assert await other.job_complete_many([(leased.lease, None)]) == [True]
        assert (await must_get(backend, job.id)).state is State.SUCCEEDED


async def test_closing_a_clone_leaves_the_original_working(backend: Backend) -> None:
    async with opened_clone(backend) as other:
        job = await enqueue(other)
    assert (await lease_one(backend)).id == job.id
