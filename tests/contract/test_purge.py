"""job_purge: ended jobs past retention go, with their events; nothing else does."""

from __future__ import annotations

from datetime import timedelta

from offload.backends import Backend
from offload.job import Job
from offload.lifecycle import State

from .helpers import BOOM, clock_past, enqueue, enqueue_and_lease, must_get

EVERY_STATE = list(State)


async def _succeeded(backend: Backend) -> Job:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    return await must_get(backend, job.id)


async def _dead(backend: Backend) -> Job:
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, BOOM, None) is not None
    return await must_get(backend, job.id)


async def _cancelled(backend: Backend) -> Job:
    job = await enqueue(backend)
    assert await backend.job_cancel(job.id) is not None
    return await must_get(backend, job.id)


async def _gone(backend: Backend, job: Job) -> bool:
    return (
        await backend.job_get(job.id) is None
        and await backend.event_list(job.id) == []
        and await backend.event_latest(job.id) is None
    )


async def test_purge_removes_ended_jobs_in_the_given_states(backend: Backend) -> None:
    done, dead, cancelled = (
        await _succeeded(backend),
        await _dead(backend),
        await _cancelled(backend),
    )
    cutoff = (await backend.now()) + timedelta(seconds=1)
    assert await backend.job_purge(cutoff, [State.SUCCEEDED, State.DEAD]) == 2
    assert await _gone(backend, done)
    assert await _gone(backend, dead)
    assert await must_get(backend, cancelled.id) == cancelled
    assert await backend.job_purge(cutoff, [State.CANCELLED]) == 1
    assert await _gone(backend, cancelled)


async def test_purge_keeps_jobs_that_finished_after_the_cutoff(backend: Backend) -> None:
    early = await _succeeded(backend)
    assert early.finished_at is not None
    cutoff = early.finished_at + timedelta(microseconds=1)
    await clock_past(backend, cutoff)
    late = await _succeeded(backend)
    assert await backend.job_purge(cutoff, [State.SUCCEEDED]) == 1
    assert await _gone(backend, early)
    assert await must_get(backend, late.id) == late
    assert len(await backend.event_list(late.id)) == 3


async def test_purge_never_touches_jobs_that_have_not_ended(backend: Backend) -> None:
    queued = await enqueue(backend, queue="q1")
    scheduled = await enqueue(backend, delay=3600)
    running = await enqueue_and_lease(backend)
    cutoff = (await backend.now()) + timedelta(days=365)
    assert await backend.job_purge(cutoff, EVERY_STATE) == 0
    for job in (queued, scheduled, running):
        assert await must_get(backend, job.id) == job


async def test_purge_with_nothing_to_do_returns_zero(backend: Backend) -> None:
    done = await _succeeded(backend)
    past = (await backend.now()) - timedelta(hours=1)
    assert await backend.job_purge(past, EVERY_STATE) == 0
    assert await backend.job_purge((await backend.now()) + timedelta(seconds=1), []) == 0
    assert await must_get(backend, done.id) == done


async def test_a_redriven_job_is_not_purged_for_its_old_finish(backend: Backend) -> None:
    dead = await _dead(backend)
    assert await backend.job_redrive(dead.id) is not None
    cutoff = (await backend.now()) + timedelta(seconds=1)
    assert await backend.job_purge(cutoff, EVERY_STATE) == 0
    assert (await must_get(backend, dead.id)).state is State.QUEUED
