"""Discarding instead of dead-lettering, batch retention and schedule
descriptions: the storage side of what users of the seed libraries expect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from uuid_utils import uuid7

from offload import event_data as ed
from offload.backends import Backend
from offload.job import DISCARD_META, JobQuery, NewBatch, Schedule
from offload.lifecycle import EventKind, State

from .helpers import BOOM, enqueue, enqueue_and_lease, lease_one, must_get, recover

E = EventKind


async def _data(backend: Backend, job_id: str) -> list[tuple[EventKind, dict[str, Any]]]:
    return [(event.kind, event.data) for event in await backend.event_list(job_id)]


# discard ------------------------------------------------------------------------------


async def test_discard_ends_cancelled_with_the_error_and_a_discarded_event(
    backend: Backend,
) -> None:
    job = await enqueue_and_lease(backend)
    done = await backend.job_discard(job.lease, BOOM, ran=True)
    assert done is not None
    stored = await must_get(backend, job.id)
    for j in (done, stored):
        assert j.state is State.CANCELLED
        assert j.error == BOOM
        assert j.finished_at is not None
        assert j.lease_token is None
    expected = ed.failure(BOOM) | {"attempt": 1}
    assert (await _data(backend, job.id))[-2:] == [(E.FAILED, expected), (E.DISCARDED, expected)]


async def test_a_discarded_job_is_not_in_the_dead_letter(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_discard(job.lease, BOOM, ran=True) is not None
    dead = await backend.job_list(JobQuery(states=[State.DEAD], queue=job.queue))
    assert dead == []
    cancelled = await backend.job_list(JobQuery(states=[State.CANCELLED], queue=job.queue))
    assert [j.id for j in cancelled] == [job.id]


async def test_discarding_a_job_that_could_not_start_records_no_failed_attempt(
    backend: Backend,
) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_discard(job.lease, BOOM, ran=False) is not None
    assert (await must_get(backend, job.id)).state is State.CANCELLED
    assert (await _data(backend, job.id))[-1] == (E.DISCARDED, ed.failure(BOOM))
    assert E.FAILED not in [kind for kind, _ in await _data(backend, job.id)]


async def test_discard_is_fenced_by_the_lease(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    stale = job.lease.__class__(job.id, "not-the-token")
    assert await backend.job_discard(stale, BOOM, ran=True) is None
    assert (await must_get(backend, job.id)).state is State.RUNNING


async def test_a_discarded_job_can_be_redriven(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_discard(job.lease, BOOM, ran=True) is not None
    again = await backend.job_redrive(job.id)
    assert again is not None
    assert again.state is State.QUEUED
    assert again.error is None


async def test_a_lease_lapsing_on_the_last_attempt_discards_a_job_without_dead_letter(
    backend: Backend,
) -> None:
    """The worker died on the last attempt: the task's choice, kept on the job,
    decides between the dead letter and a discard, as for an attempt that raised."""
    meta = {DISCARD_META: True}
    job = await enqueue_and_lease(backend, lease_for=0.3, max_attempts=2, meta=meta)
    assert (await recover(backend, job.id)).state is State.QUEUED  # attempts left: redelivered
    await lease_one(backend, [job.queue], lease_for=0.3)
    done = await recover(backend, job.id)
    stored = await must_get(backend, job.id)
    for j in (done, stored):
        assert (j.state, j.attempts, j.error) == (State.CANCELLED, 2, ed.LEASE_EXPIRED)
        assert j.finished_at is not None
        assert j.lease_token is None
    kinds = [kind for kind, _ in await _data(backend, job.id)]
    assert kinds[-2:] == [E.LEASE_EXPIRED, E.DISCARDED]
    assert await backend.job_list(JobQuery(states=frozenset({State.DEAD}), queue=job.queue)) == []


async def test_without_the_discard_mark_a_lapsed_last_attempt_is_dead(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=0.3, max_attempts=1, meta={"other": 1})
    assert (await recover(backend, job.id)).state is State.DEAD
    assert [kind for kind, _ in await _data(backend, job.id)][-2:] == [E.LEASE_EXPIRED, E.DEAD]


# batch retention ----------------------------------------------------------------------


def _batch() -> NewBatch:
    return NewBatch(id=str(uuid7()), tenant="default")


async def test_a_finished_batch_goes_once_its_jobs_were_purged(backend: Backend) -> None:
    made = await backend.batch_create(_batch())
    job = await enqueue_and_lease(backend, batch_id=made.id)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    assert await backend.batch_finish(made.id, []) is True
    later = await backend.now() + timedelta(seconds=1)
    assert await backend.batch_purge(later) == 0, "its job is still there"
    assert await backend.batch_get(made.id) is not None
    assert await backend.job_purge(later, [State.SUCCEEDED]) >= 1
    assert await backend.batch_purge(later) == 1
    assert await backend.batch_get(made.id) is None
    assert made.id not in [b.id for b in await backend.batch_list(limit=1000)]


async def test_batch_purge_keeps_unfinished_and_recent_batches(backend: Backend) -> None:
    open_ = await backend.batch_create(_batch())
    recent = await backend.batch_create(_batch())
    assert await backend.batch_finish(recent.id, []) is True
    stored = await backend.batch_get(recent.id)
    assert stored is not None
    assert stored.finished_at is not None
    assert await backend.batch_purge(stored.finished_at - timedelta(seconds=1)) == 0
    far = await backend.now() + timedelta(days=1)
    assert await backend.batch_purge(far) >= 1
    assert await backend.batch_get(open_.id) is not None
    assert await backend.batch_get(recent.id) is None


async def test_a_batch_holding_a_dead_job_stays(backend: Backend) -> None:
    made = await backend.batch_create(_batch())
    job = await enqueue_and_lease(backend, batch_id=made.id)
    assert await backend.job_fail(job.lease, BOOM, None) is not None
    assert await backend.batch_finish(made.id, []) is True
    later = await backend.now() + timedelta(seconds=1)
    await backend.job_purge(later, [State.SUCCEEDED, State.CANCELLED])
    await backend.batch_purge(later)
    kept = await backend.batch_get(made.id)
    assert kept is not None
    assert kept.counts == {State.DEAD: 1}


# schedule description -----------------------------------------------------------------

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def _schedule(description: str | None) -> Schedule:
    return Schedule(
        id=f"s-{uuid7()}", task="tests.echo", payload=b"{}", cron="0 3 * * *",
        next_run_at=T0, description=description,
    )  # fmt: skip


async def test_a_schedule_keeps_its_description(backend: Backend) -> None:
    text = "Nightly report for ops — résumé ✓"
    stored = await backend.schedule_upsert(_schedule(text))
    got = await backend.schedule_get(stored.id, "default")
    assert got is not None
    assert stored.description == got.description == text
    listed = [s for s in await backend.schedule_list("default") if s.id == stored.id]
    assert [s.description for s in listed] == [text]
    assert await backend.schedule_delete(stored.id, "default")


async def test_a_replace_changes_or_clears_the_description(backend: Backend) -> None:
    first = await backend.schedule_upsert(_schedule("old"))
    replaced = _schedule(None)
    replaced.id = first.id
    assert (await backend.schedule_upsert(replaced)).description is None
    got = await backend.schedule_get(first.id, "default")
    assert got is not None
    assert got.description is None
    assert await backend.schedule_delete(first.id, "default")


async def test_jobs_outside_any_batch_do_not_keep_batches(backend: Backend) -> None:
    made = await backend.batch_create(_batch())
    await enqueue(backend)
    assert await backend.batch_finish(made.id, []) is True
    assert await backend.batch_purge(await backend.now() + timedelta(seconds=1)) >= 1
    assert await backend.batch_get(made.id) is None
