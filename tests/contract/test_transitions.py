"""Each job transition applied, and refused when the state or the lease is wrong.

A refused transition returns ``None``/``False`` and changes nothing: neither the
job nor its events. That is the fencing that keeps a worker which lost its lease
from overwriting the work of the one that holds it now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from offload.backends import Backend
from offload.job import Cancellation, CancelOutcome, ErrorInfo, Job, Lease
from offload.lifecycle import EventKind, State

from .helpers import (
    BOOM,
    enqueue,
    enqueue_and_lease,
    kinds,
    lease_one,
    lease_when_due,
    must_get,
    near,
)

# complete / fail / retry / reject / requeue / cancel_confirm / progress ----------


async def test_complete_stores_the_result_and_ends_the_job(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, b'"done"')]) == [True]
    done = await must_get(backend, job.id)
    assert (done.state, done.result_data, done.attempts) == (State.SUCCEEDED, b'"done"', 1)
    assert near(done.finished_at, await backend.now())


async def test_complete_without_result_keeps_none(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, None)]) == [True]
    done = await must_get(backend, job.id)
    assert (done.state, done.result_data) == (State.SUCCEEDED, None)


async def test_complete_many_answers_per_item(backend: Backend) -> None:
    a = await enqueue_and_lease(backend)
    b = await enqueue_and_lease(backend)
    c = await enqueue_and_lease(backend)
    stale = Lease(b.id, "not-the-token")
    flags = await backend.job_complete_many([(a.lease, b"1"), (stale, b"2"), (c.lease, b"3")])
    assert flags == [True, False, True]
    states = [(await must_get(backend, j.id)).state for j in (a, b, c)]
    assert states == [State.SUCCEEDED, State.RUNNING, State.SUCCEEDED]
    assert (await must_get(backend, c.id)).result_data == b"3"


async def test_fail_with_retry_in_schedules_the_next_attempt(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    before = await backend.now()
    failed = await backend.job_fail(job.lease, BOOM, 3600.0)
    assert failed is not None
    assert (failed.state, failed.attempts, failed.error) == (State.SCHEDULED, 1, BOOM)
    assert failed.lease_token is None
    assert failed.finished_at is None
    assert near(failed.run_at, before + timedelta(seconds=3600))
    assert await must_get(backend, job.id) == failed


async def test_retried_job_is_leased_again_when_due_with_attempt_two(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, BOOM, 0.2) is not None
    again = await lease_when_due(backend, job.queue)
    assert (again.id, again.attempts, again.state) == (job.id, 2, State.RUNNING)
    assert again.started_at is not None
    assert again.started_at >= again.run_at


async def test_fail_without_retry_in_is_dead(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    dead = await backend.job_fail(job.lease, BOOM, None)
    assert dead is not None
    assert (dead.state, dead.error, dead.attempts, dead.lease_token) == (
        State.DEAD, BOOM, 1, None,
    )  # fmt: skip
    assert near(dead.finished_at, await backend.now())
    assert await must_get(backend, job.id) == dead


async def test_reject_is_dead_with_the_reason(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    why = ErrorInfo("UnknownTaskError", "no task is registered as 'x'")
    dead = await backend.job_reject(job.lease, why)
    assert dead is not None
    assert (dead.state, dead.error) == (State.DEAD, why)
    assert dead.finished_at is not None
    assert await must_get(backend, job.id) == dead


async def test_requeue_keeps_the_checkpoint_and_does_not_count_the_attempt(
    backend: Backend,
) -> None:
    job = await enqueue_and_lease(backend)
    back = await backend.job_requeue(job.lease, b'{"page":3}')
    assert back is not None
    assert (back.state, back.attempts, back.checkpoint_data) == (State.QUEUED, 0, b'{"page":3}')
    assert back.lease_token is None
    again = await lease_one(backend, [job.queue])
    assert (again.id, again.attempts, again.checkpoint_data) == (job.id, 1, b'{"page":3}')


async def test_requeue_without_checkpoint_keeps_the_saved_one(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_save_progress(job.lease, b"cp-1", None, None)
    back = await backend.job_requeue(job.lease, None)
    assert back is not None
    assert back.checkpoint_data == b"cp-1"


async def test_save_progress_stores_checkpoint_and_progress(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_save_progress(job.lease, b"cp-1", 0.25, "a quarter")
    assert await backend.job_save_progress(job.lease, None, 0.5, "half")
    stored = await must_get(backend, job.id)
    assert (stored.checkpoint_data, stored.progress, stored.progress_message) == (
        b"cp-1", 0.5, "half",
    )  # fmt: skip
    assert stored.state is State.RUNNING
    assert stored.lease_token == job.lease_token


async def test_checkpoint_alone_changes_no_progress(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_save_progress(job.lease, b"cp-2", None, None)
    stored = await must_get(backend, job.id)
    assert (stored.checkpoint_data, stored.progress) == (b"cp-2", None)


# cancel ------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.0, 3600.0], ids=["queued", "scheduled"])
async def test_cancel_a_waiting_job_ends_it(backend: Backend, delay: float) -> None:
    job = await enqueue(backend, delay=delay)
    answer = await backend.job_cancel(job.id)
    assert answer is not None
    assert answer.outcome is CancelOutcome.CANCELLED
    cancelled = answer.job
    assert cancelled.state is State.CANCELLED
    assert cancelled.finished_at is not None
    assert await must_get(backend, job.id) == cancelled
    assert await backend.job_lease("w", ["default"], 5, 30.0) == []


async def test_cancel_a_running_job_only_requests_it(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    answer = await backend.job_cancel(job.id)
    assert answer is not None
    assert answer.outcome is CancelOutcome.REQUESTED
    requested = answer.job
    assert (requested.state, requested.cancel_requested) == (State.RUNNING, True)
    again = await backend.job_cancel(job.id)  # asked twice: still a request, one event
    assert again is not None
    assert again.outcome is CancelOutcome.REQUESTED
    assert (await kinds(backend, job.id)).count(EventKind.CANCEL_REQUESTED) == 1
    assert requested.lease_token == job.lease_token
    confirmed = await backend.job_cancel_confirm(job.lease)
    assert confirmed is not None
    assert confirmed.state is State.CANCELLED
    assert confirmed.finished_at is not None
    assert await must_get(backend, job.id) == confirmed


async def test_cancel_an_ended_job_returns_it_unchanged(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    before = await must_get(backend, job.id)
    events = await backend.event_list(job.id)
    assert await backend.job_cancel(job.id) == Cancellation(before, CancelOutcome.ENDED)
    assert await must_get(backend, job.id) == before
    assert await backend.event_list(job.id) == events


async def test_cancel_an_unknown_job_is_none(backend: Backend) -> None:
    assert await backend.job_cancel("00000000-0000-7000-8000-000000000000") is None


# redrive ----------------------------------------------------------------------


async def test_redrive_a_dead_job_queues_it_with_attempts_reset(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_fail(job.lease, BOOM, None) is not None
    again = await backend.job_redrive(job.id)
    assert again is not None
    assert (again.state, again.attempts, again.error, again.finished_at) == (
        State.QUEUED, 0, None, None,
    )  # fmt: skip
    leased = await lease_one(backend, [job.queue])
    assert (leased.id, leased.attempts) == (job.id, 1)


async def test_redrive_a_cancelled_job_queues_it(backend: Backend) -> None:
    job = await enqueue(backend, delay=3600)
    assert await backend.job_cancel(job.id) is not None
    again = await backend.job_redrive(job.id)
    assert again is not None
    assert again.state is State.QUEUED
    assert (await lease_one(backend)).id == job.id


async def _queued(backend: Backend) -> Job:
    return await enqueue(backend, queue="redrive-refused")


async def _running(backend: Backend) -> Job:
    return await enqueue_and_lease(backend)


async def _succeeded(backend: Backend) -> Job:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, None)]) == [True]
    return job


@pytest.mark.parametrize("make", [_queued, _running, _succeeded], ids=lambda f: f.__name__[1:])
async def test_redrive_is_refused_unless_dead_or_cancelled(
    backend: Backend, make: Callable[[Backend], Awaitable[Job]]
) -> None:
    job = await make(backend)
    before, events = await must_get(backend, job.id), await backend.event_list(job.id)
    assert await backend.job_redrive(job.id) is None
    assert await must_get(backend, job.id) == before
    assert await backend.event_list(job.id) == events


# fencing: every leased transition refused on a stale token or a wrong state -------

Op = Callable[[Backend, Lease], Awaitable[Any]]


async def _complete(b: Backend, lease: Lease) -> Any:
    return (await b.job_complete_many([(lease, b'"late"')]))[0]


LEASED_OPS: dict[str, Op] = {
    "complete": _complete,
    "retry": lambda b, lease: b.job_fail(lease, BOOM, 1.0),
    "fail": lambda b, lease: b.job_fail(lease, BOOM, None),
    "reject": lambda b, lease: b.job_reject(lease, BOOM),
    "requeue": lambda b, lease: b.job_requeue(lease, b"late-cp"),
    "cancel_confirm": lambda b, lease: b.job_cancel_confirm(lease),
    "progress": lambda b, lease: b.job_save_progress(lease, b"late-cp", 0.9, "late"),
}


async def _forged_token(backend: Backend) -> Lease:
    job = await enqueue_and_lease(backend)
    return Lease(job.id, "not-the-token")


async def _superseded_token(backend: Backend) -> Lease:
    # The job went back to the queue and another worker holds it now.
    job = await enqueue_and_lease(backend)
    assert await backend.job_requeue(job.lease, None) is not None
    await lease_one(backend, [job.queue], worker="worker-2")
    return job.lease


async def _ended_job(backend: Backend) -> Lease:
    job = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    return job.lease


async def _never_leased(backend: Backend) -> Lease:
    job = await enqueue(backend, queue="never-leased")
    return Lease(job.id, "made-up")


FENCES = {
    "forged": _forged_token,
    "superseded": _superseded_token,
    "ended": _ended_job,
    "never_leased": _never_leased,
}


@pytest.mark.parametrize("fence", list(FENCES))
@pytest.mark.parametrize("op", list(LEASED_OPS))
async def test_leased_transition_is_refused_and_changes_nothing(
    backend: Backend, op: str, fence: str
) -> None:
    lease = await FENCES[fence](backend)
    before = await must_get(backend, lease.job_id)
    events = await backend.event_list(lease.job_id)
    assert await LEASED_OPS[op](backend, lease) in (None, False)
    assert await must_get(backend, lease.job_id) == before
    assert await backend.event_list(lease.job_id) == events


@pytest.mark.parametrize("op", list(LEASED_OPS))
async def test_leased_transition_on_an_unknown_job_is_refused(backend: Backend, op: str) -> None:
    lease = Lease("00000000-0000-7000-8000-000000000000", "x")
    assert await LEASED_OPS[op](backend, lease) in (None, False)
    assert await backend.job_get(lease.job_id) is None


async def test_cancel_confirm_after_completion_is_refused(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.job_cancel(job.id) is not None
    assert await backend.job_complete_many([(job.lease, b"1")]) == [True]
    assert await backend.job_cancel_confirm(job.lease) is None
    assert (await must_get(backend, job.id)).state is State.SUCCEEDED
    assert (await kinds(backend, job.id))[-1] == "succeeded"


async def test_redrive_is_refused_while_a_live_job_holds_its_unique_key(backend: Backend) -> None:
    old = await enqueue(backend, unique_key="nightly", delay=3600)
    assert await backend.job_cancel(old.id) is not None
    newer = await enqueue(backend, unique_key="nightly", delay=3600)
    assert newer.id != old.id
    assert await backend.job_redrive(old.id) is None
    assert (await must_get(backend, old.id)).state is State.CANCELLED
    assert await backend.job_cancel(newer.id) is not None
    redriven = await backend.job_redrive(old.id)
    assert redriven is not None
    assert redriven.state is State.QUEUED


async def test_cancel_a_job_cancelled_before_says_it_had_ended(backend: Backend) -> None:
    job = await enqueue(backend, delay=3600)
    first = await backend.job_cancel(job.id)
    assert first is not None
    assert first.outcome is CancelOutcome.CANCELLED
    second = await backend.job_cancel(job.id)
    assert second is not None
    assert (second.outcome, second.job.state) == (CancelOutcome.ENDED, State.CANCELLED)
