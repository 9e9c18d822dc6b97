"""``Event.data`` of every transition, pinned on every backend.

The data is built in one place (``offload.event_data`` for what the caller hands
in, the transition's ``stamps`` for what only the backend knows); these tests make
sure every backend stores exactly that, in the same shape and units, so a reader
of the event feed never needs to know which backend wrote it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from offload import event_data as ed
from offload.backends import Backend
from offload.job import Event, Job
from offload.lifecycle import EventKind

from .helpers import (
    BOOM,
    clock_past,
    enqueue,
    enqueue_and_lease,
    lease_one,
    lease_when_due,
    must_get,
    recover,
)

E = EventKind


async def _data(backend: Backend, job_id: str) -> list[tuple[EventKind, dict[str, Any]]]:
    return [(event.kind, event.data) for event in await backend.event_list(job_id)]


async def _last(backend: Backend, job_id: str, count: int) -> list[Event]:
    return (await backend.event_list(job_id))[-count:]


async def test_enqueue_records_no_data(backend: Backend) -> None:
    now = await enqueue(backend)
    later = await enqueue(backend, delay=3600)
    assert await _data(backend, now.id) == [(E.ENQUEUED, {})]
    assert await _data(backend, later.id) == [(E.SCHEDULED, {})]


async def test_start_stamps_the_attempt_and_the_worker(backend: Backend) -> None:
    job = await enqueue(backend, queue="ed-start")
    await lease_one(backend, ["ed-start"], worker="worker-7")
    assert (await _data(backend, job.id))[-1] == (E.STARTED, {"attempt": 1, "worker": "worker-7"})


async def test_succeed_records_no_data(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    assert (await _data(backend, job.id))[-1] == (E.SUCCEEDED, {})


async def test_retry_records_the_error_the_attempt_and_the_due_time(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    retried = await backend.job_fail(job.lease, BOOM, 120.0)
    assert retried is not None
    failed, scheduled = await _last(backend, job.id, 2)
    assert (failed.kind, scheduled.kind) == (E.FAILED, E.RETRY_SCHEDULED)
    assert failed.data == scheduled.data
    data = dict(failed.data)
    # The very text Python's isoformat gives, whatever the server's JSON would.
    assert data.pop("run_at") == retried.run_at.astimezone(UTC).isoformat()
    assert data == ed.failure(BOOM) | {"attempt": 1}


async def test_fail_records_the_error_and_the_attempt(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, BOOM, None) is not None
    expected = ed.failure(BOOM) | {"attempt": 1}
    assert (await _data(backend, job.id))[-2:] == [(E.FAILED, expected), (E.DEAD, expected)]


async def test_a_typed_error_value_travels_in_the_data(backend: Backend) -> None:
    typed = BOOM.__class__("Declined", "card declined", None, {"code": 51, "retry": False})
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, typed, None) is not None
    assert (await _data(backend, job.id))[-1] == (E.DEAD, ed.failure(typed) | {"attempt": 1})


async def test_reject_records_the_error_alone(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_reject(job.lease, BOOM) is not None
    assert (await _data(backend, job.id))[-1] == (E.DEAD, ed.failure(BOOM))


async def test_requeue_records_no_data(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_requeue(job.lease, None) is not None
    assert (await _data(backend, job.id))[-1] == (E.REQUEUED, {})


async def test_snooze_records_the_delay_and_the_reason(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_snooze(job.lease, 2.5, "rate limit 2/s") is not None
    expected = ed.snoozed(2.5, "rate limit 2/s")
    assert (await _data(backend, job.id))[-1] == (E.SNOOZED, expected)


async def test_cancels_record_no_data(backend: Backend) -> None:
    waiting = await enqueue(backend, delay=3600)
    assert await backend.job_cancel(waiting.id) is not None
    assert (await _data(backend, waiting.id))[-1] == (E.CANCELLED, {})
    running = await enqueue_and_lease(backend)
    assert await backend.job_cancel(running.id) is not None
    assert (await _data(backend, running.id))[-1] == (E.CANCEL_REQUESTED, {})
    assert await backend.job_cancel_confirm(running.lease) is not None
    assert (await _data(backend, running.id))[-1] == (E.CANCELLED, {})


async def test_progress_records_the_fraction_and_the_message(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_save_progress(job.lease, None, 0.25, "a quarter")
    assert await backend.job_save_progress(job.lease, None, 0.5, None)
    assert (await _data(backend, job.id))[-2:] == [
        (E.PROGRESS, ed.progress(0.25, "a quarter")),
        (E.PROGRESS, ed.progress(0.5, None)),
    ]


async def test_expire_stamps_the_worker_and_the_attempt(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=0.2, max_attempts=3)
    await clock_past(backend, _lease_end(job))
    await recover(backend, job.id)
    assert (await _data(backend, job.id))[-1] == (
        E.LEASE_EXPIRED, {"worker": "worker-1", "attempt": 1},
    )  # fmt: skip


async def test_expire_on_the_last_attempt_dies_with_the_one_lease_error(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=0.2, max_attempts=1)
    await clock_past(backend, _lease_end(job))
    dead = await recover(backend, job.id)
    expected = {"worker": "worker-1", "attempt": 1}
    assert (await _data(backend, job.id))[-2:] == [(E.LEASE_EXPIRED, expected), (E.DEAD, expected)]
    assert dead.error == ed.LEASE_EXPIRED
    assert (await must_get(backend, job.id)).error == ed.LEASE_EXPIRED


async def test_redrive_records_no_data(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, BOOM, None) is not None
    assert await backend.job_redrive(job.id) is not None
    assert (await _data(backend, job.id))[-1] == (E.RETRIED, {})


async def test_a_second_start_stamps_the_next_attempt(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, BOOM, 0.0) is not None
    again = await lease_when_due(backend, job.queue)
    assert again.id == job.id
    assert (await _data(backend, job.id))[-1] == (E.STARTED, {"attempt": 2, "worker": "worker-1"})


def _lease_end(job: Job) -> datetime:
    assert job.lease_expires_at is not None
    return job.lease_expires_at
