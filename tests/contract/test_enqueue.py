"""job_enqueue_many: what is stored, in which state, and what comes back."""

from __future__ import annotations

from datetime import UTC, timedelta

from offload.backends import Backend
from offload.job import NewJob
from offload.lifecycle import EventKind, State

from .helpers import enqueue, must_get, near, new_job


async def test_now_is_timezone_aware_utc(backend: Backend) -> None:
    now = await backend.now()
    assert now.utcoffset() == timedelta(0)


async def test_enqueue_stores_every_field_of_the_new_job(backend: Backend) -> None:
    new = new_job(
        "tests.send", queue="mail", tenant="acme", priority=7, max_attempts=5,
        timeout=12.5, payload=b'{"to":"a@b.c"}', meta={"trace": "abc", "n": 1},
    )  # fmt: skip
    before = await backend.now()
    [job] = await backend.job_enqueue_many([new])
    assert (job.id, job.task, job.queue, job.tenant) == (new.id, "tests.send", "mail", "acme")
    assert (job.priority, job.max_attempts, job.timeout) == (7, 5, 12.5)
    assert (job.payload, job.meta) == (b'{"to":"a@b.c"}', {"trace": "abc", "n": 1})
    assert (job.state, job.attempts, job.lease_token, job.finished_at) == (
        State.QUEUED, 0, None, None,
    )  # fmt: skip
    assert near(job.created_at, before)
    assert job.created_at.tzinfo is not None
    assert job.run_at <= job.created_at + timedelta(milliseconds=1)
    assert await must_get(backend, new.id) == job


async def test_payload_bytes_are_kept_verbatim_even_when_not_text(backend: Backend) -> None:
    # A payload the worker cannot decode must reach it unchanged to be dead-lettered.
    raw = bytes(range(256))
    job = await enqueue(backend, payload=raw)
    assert (await must_get(backend, job.id)).payload == raw


async def test_delay_schedules_the_job_on_the_backend_clock(backend: Backend) -> None:
    before = await backend.now()
    job = await enqueue(backend, delay=3600)
    assert job.state is State.SCHEDULED
    assert near(job.run_at, before + timedelta(seconds=3600))
    assert (await must_get(backend, job.id)).state is State.SCHEDULED


async def test_run_at_wins_over_delay(backend: Backend) -> None:
    past = (await backend.now()) - timedelta(minutes=5)
    job = await enqueue(backend, run_at=past, delay=3600)
    assert job.state is State.QUEUED
    assert near(job.run_at, past, timedelta(milliseconds=1))


async def test_run_at_in_the_future_schedules(backend: Backend) -> None:
    later = (await backend.now()) + timedelta(hours=2)
    job = await enqueue(backend, run_at=later)
    assert job.state is State.SCHEDULED
    assert near(job.run_at, later, timedelta(milliseconds=1))
    assert job.run_at.astimezone(UTC) == job.run_at


async def test_many_jobs_in_one_call_come_back_in_order(backend: Backend) -> None:
    news = [new_job(queue=f"q{i % 3}", payload=f'{{"i":{i}}}'.encode()) for i in range(25)]
    jobs = await backend.job_enqueue_many(news)
    assert [j.id for j in jobs] == [n.id for n in news]
    assert [j.payload for j in jobs] == [n.payload for n in news]
    for new in news:
        assert (await must_get(backend, new.id)).queue == new.queue


async def test_empty_batch_stores_nothing(backend: Backend) -> None:
    assert await backend.job_enqueue_many([]) == []
    assert not any((await backend.job_counts()).values())


async def test_enqueueing_an_existing_id_returns_the_stored_job(backend: Backend) -> None:
    first = new_job(queue="once")
    [stored] = await backend.job_enqueue_many([first])
    again = NewJob(id=first.id, task="tests.other", payload=b"{}", queue="twice")
    [repeat] = await backend.job_enqueue_many([again])
    assert (repeat.id, repeat.task, repeat.queue) == (stored.id, stored.task, "once")
    assert [e.kind for e in await backend.event_list(first.id)] == [EventKind.ENQUEUED]
