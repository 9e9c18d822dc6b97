"""Pause and resume: leasing stops for the paused scope at once; running jobs
and other scopes go on."""

from __future__ import annotations

from offload.backends import Backend
from offload.lifecycle import State

from .helpers import clock_past, enqueue, must_get


async def _leased_ids(backend: Backend, queues: list[str]) -> set[str]:
    return {j.id for j in await backend.job_lease("w", queues, 100, 30.0)}


async def test_a_global_pause_stops_all_leasing_until_resumed(backend: Backend) -> None:
    job = await enqueue(backend, queue="a")
    await backend.control_pause(None, None)
    assert await _leased_ids(backend, ["a"]) == set()
    assert (await must_get(backend, job.id)).state is State.QUEUED
    assert await backend.control_resume(None, None) is True
    assert await _leased_ids(backend, ["a"]) == {job.id}


async def test_a_queue_pause_leaves_other_queues_leasable(backend: Backend) -> None:
    a = await enqueue(backend, queue="a")
    b = await enqueue(backend, queue="b")
    await backend.control_pause(None, "a")
    assert await _leased_ids(backend, ["a", "b"]) == {b.id}
    await backend.control_resume(None, "a")
    assert await _leased_ids(backend, ["a", "b"]) == {a.id}


async def test_a_tenant_pause_skips_only_that_tenants_jobs(backend: Backend) -> None:
    acme = await enqueue(backend, queue="q", tenant="acme")
    globex = await enqueue(backend, queue="q", tenant="globex")
    await backend.control_pause("acme", None)
    assert await _leased_ids(backend, ["q"]) == {globex.id}
    await backend.control_resume("acme", None)
    assert await _leased_ids(backend, ["q"]) == {acme.id}


async def test_a_tenant_queue_pause_is_that_pair_only(backend: Backend) -> None:
    acme_a = await enqueue(backend, queue="a", tenant="acme")
    acme_b = await enqueue(backend, queue="b", tenant="acme")
    other_a = await enqueue(backend, queue="a", tenant="globex")
    await backend.control_pause("acme", "a")
    assert await _leased_ids(backend, ["a", "b"]) == {acme_b.id, other_a.id}
    await backend.control_resume("acme", "a")
    assert await _leased_ids(backend, ["a"]) == {acme_a.id}


async def test_a_paused_tenant_does_not_block_others_behind_it(backend: Backend) -> None:
    """Jobs of a paused tenant at the head of a queue must not starve the rest."""
    for _ in range(5):
        await enqueue(backend, queue="q", tenant="acme", priority=10)
    other = await enqueue(backend, queue="q", tenant="globex")
    await backend.control_pause("acme", None)
    assert await _leased_ids(backend, ["q"]) == {other.id}


async def test_pause_is_idempotent_and_listed_in_scope_order(backend: Backend) -> None:
    first = await backend.control_pause("acme", "a")
    again = await backend.control_pause("acme", "a")
    assert (again.tenant, again.queue) == (first.tenant, first.queue) == ("acme", "a")
    await backend.control_pause(None, "b")
    await backend.control_pause(None, None)
    await backend.control_pause("acme", None)
    pauses = await backend.control_pauses()
    assert [(p.tenant, p.queue) for p in pauses] == [
        (None, None), (None, "b"), ("acme", None), ("acme", "a")
    ]  # fmt: skip
    assert all(p.at is not None for p in pauses)
    assert [(p.tenant, p.queue) for p in await backend.control_pauses("acme")] == [
        ("acme", None), ("acme", "a")
    ]  # fmt: skip


async def test_resume_of_a_scope_not_paused_is_false(backend: Backend) -> None:
    await backend.control_pause("acme", None)
    assert await backend.control_resume(None, "acme") is False
    assert await backend.control_resume("acme", "x") is False
    assert [(p.tenant, p.queue) for p in await backend.control_pauses()] == [("acme", None)]


async def test_a_running_job_finishes_while_paused(backend: Backend) -> None:
    job = await enqueue(backend, queue="a")
    [leased] = await backend.job_lease("w", ["a"], 1, 30.0)
    await backend.control_pause(None, None)
    assert await backend.job_complete_many([(leased.lease, b"1")]) == [True]
    assert (await must_get(backend, job.id)).state is State.SUCCEEDED


async def test_scheduled_jobs_of_a_paused_queue_wait(backend: Backend) -> None:
    job = await enqueue(backend, queue="a", delay=0.05)
    await backend.control_pause(None, "a")
    await clock_past(backend, job.run_at)
    assert await _leased_ids(backend, ["a"]) == set()
    await backend.control_resume(None, "a")
    assert await _leased_ids(backend, ["a"]) == {job.id}
