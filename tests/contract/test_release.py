"""Dependents: a job waiting for its parents is never leased, and RELEASE or
CANCEL_DEPENDENT moves it on exactly once, however many callers race."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from uuid_utils import uuid7

from offload import event_data as ed
from offload import lifecycle as lc
from offload.backends import Backend
from offload.dependencies import WAITING_UNTIL
from offload.job import Job
from offload.lifecycle import EventKind, State

from .helpers import enqueue, opened_clone


async def waiting(backend: Backend, queue: str) -> Job:
    parent = str(uuid7())
    return await enqueue(
        backend, queue=queue, run_at=WAITING_UNTIL,
        meta={"depends_on": [parent], "on_parent_failure": "cancel"},
    )  # fmt: skip


async def test_a_waiting_dependent_is_not_leased(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    job = await waiting(backend, queue)
    assert job.state is State.SCHEDULED
    assert job.depends_on
    assert await backend.job_lease("w", [queue], 10, 30.0) == []


async def test_release_makes_it_due_now_with_its_event(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    job = await waiting(backend, queue)
    data = ed.released({job.depends_on[0]: "succeeded"})
    released = await backend.job_release(job.id, lc.RELEASE, data)
    assert released is not None
    assert released.state is State.QUEUED
    assert released.run_at < WAITING_UNTIL
    events = await backend.event_list(job.id)
    assert [e.kind for e in events] == [EventKind.SCHEDULED, EventKind.RELEASED]
    assert events[-1].data == data
    leased = await backend.job_lease("w", [queue], 10, 30.0)
    assert [j.id for j in leased] == [job.id]


async def test_cancel_dependent_records_the_parent_and_why(backend: Backend) -> None:
    queue = f"q-{uuid7()}"
    job = await waiting(backend, queue)
    data = ed.parent_failed(job.depends_on[0], "dead")
    cancelled = await backend.job_release(job.id, lc.CANCEL_DEPENDENT, data)
    assert cancelled is not None
    assert cancelled.state is State.CANCELLED
    assert cancelled.finished_at is not None
    last = await backend.event_latest(job.id)
    assert last is not None
    assert (last.kind, last.data["reason"]) == (EventKind.CANCELLED, data["reason"])
    assert await backend.job_release(job.id, lc.RELEASE, {}) is None


async def test_a_job_that_no_longer_waits_is_left_alone(backend: Backend) -> None:
    queued = await enqueue(backend, queue=f"q-{uuid7()}")
    assert await backend.job_release(queued.id, lc.RELEASE, {}) is None
    assert await backend.job_release(str(uuid7()), lc.RELEASE, {}) is None
    assert await backend.job_release("not-a-uuid", lc.CANCEL_DEPENDENT, {}) is None
    got = await backend.job_get(queued.id)
    assert got is not None
    assert got.state is State.QUEUED


async def test_other_transitions_are_refused(backend: Backend) -> None:
    job = await waiting(backend, f"q-{uuid7()}")
    with pytest.raises(ValueError, match="release or cancel_dependent"):
        await backend.job_release(job.id, lc.CANCEL_WAITING, {})


async def test_racing_releasers_release_once(backend: Backend) -> None:
    job = await waiting(backend, f"q-{uuid7()}")
    async with AsyncExitStack() as stack:
        clones = [await stack.enter_async_context(opened_clone(backend)) for _ in range(3)]
        replies = await asyncio.gather(*(
            c.job_release(job.id, lc.RELEASE if i % 2 else lc.CANCEL_DEPENDENT, {})
            for i, c in enumerate([backend, *clones] * 2)
        ))  # fmt: skip
    won = [r for r in replies if r is not None]
    assert len(won) == 1
    kinds = [e.kind for e in await backend.event_list(job.id)]
    assert kinds.count(EventKind.RELEASED) + kinds.count(EventKind.CANCELLED) == 1
