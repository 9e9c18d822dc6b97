"""Expired leases (the worker died) and the heartbeats that keep leases alive."""

from __future__ import annotations

from offload.backends import Backend
from offload.job import Lease
from offload.lifecycle import State

from .helpers import (
    enqueue,
    enqueue_and_lease,
    lease_one,
    must_get,
    recover,
)

SHORT = 0.3


async def test_expired_lease_goes_back_to_queued_with_the_attempt_counted(
    backend: Backend,
) -> None:
    job = await enqueue_and_lease(backend, lease_for=SHORT, max_attempts=3)
    recovered = await recover(backend, job.id)
    assert (recovered.state, recovered.attempts, recovered.lease_token) == (
        State.QUEUED, 1, None,
    )  # fmt: skip
    assert await must_get(backend, job.id) == recovered
    again = await lease_one(backend, [job.queue])
    assert (again.id, again.attempts) == (job.id, 2)


async def test_expired_lease_on_the_last_attempt_is_dead(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=SHORT, max_attempts=1)
    recovered = await recover(backend, job.id)
    assert (recovered.state, recovered.attempts) == (State.DEAD, 1)
    assert recovered.finished_at is not None
    # A job dead by expiry carries an error saying why, like every other dead job.
    assert recovered.error is not None
    assert await backend.job_lease("w", [job.queue], 1, 30.0) == []


async def test_expiry_keeps_the_saved_checkpoint(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=SHORT)
    assert await backend.job_save_progress(job.lease, b"cp-7", None, None)
    await recover(backend, job.id)
    assert (await lease_one(backend, [job.queue])).checkpoint_data == b"cp-7"


async def test_a_live_lease_is_not_recovered(backend: Backend) -> None:
    live = await enqueue_and_lease(backend, lease_for=60.0)
    control = await enqueue_and_lease(backend, lease_for=SHORT)
    await recover(backend, control.id)  # proves recovery ran with time passing
    assert live.id not in {j.id for j in await backend.job_recover_expired()}
    assert await must_get(backend, live.id) == live


async def test_worker_that_lost_its_lease_is_fenced_off(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=SHORT)
    await recover(backend, job.id)
    holder = await lease_one(backend, [job.queue], worker="worker-2")
    assert await backend.job_complete_many([(job.lease, b"stale")]) == [False]
    assert await backend.job_complete_many([(holder.lease, b"fresh")]) == [True]
    assert (await must_get(backend, job.id)).result_data == b"fresh"


async def test_heartbeat_extends_a_lease_so_it_is_not_recovered(backend: Backend) -> None:
    kept = await enqueue_and_lease(backend, lease_for=SHORT)
    control = await enqueue_and_lease(backend, lease_for=SHORT)
    reply = await backend.job_heartbeat([kept.lease], 60.0)
    assert reply.lost == frozenset()
    assert reply.cancel_requested == frozenset()
    extended = await must_get(backend, kept.id)
    assert kept.lease_expires_at is not None
    assert extended.lease_expires_at is not None
    assert extended.lease_expires_at > kept.lease_expires_at
    await recover(backend, control.id)  # the unextended lease of the same age expired
    assert kept.id not in {j.id for j in await backend.job_recover_expired()}
    still = await must_get(backend, kept.id)
    assert (still.state, still.lease_token) == (State.RUNNING, kept.lease_token)


async def test_heartbeat_reports_lost_leases(backend: Backend) -> None:
    live = await enqueue_and_lease(backend)
    expired = await enqueue_and_lease(backend, lease_for=SHORT)
    finished = await enqueue_and_lease(backend)
    assert await backend.job_complete_many([(finished.lease, None)]) == [True]
    await recover(backend, expired.id)
    forged = Lease(live.id, "not-the-token")
    unknown = Lease("00000000-0000-7000-8000-000000000000", "x")
    leases = [live.lease, expired.lease, finished.lease, forged, unknown]
    reply = await backend.job_heartbeat(leases, 30.0)
    assert reply.lost == {expired.id, finished.id, live.id, unknown.job_id}
    # The forged lease is lost, but the real one it shares an id with stays live.
    assert (await backend.job_heartbeat([live.lease], 30.0)).lost == frozenset()


async def test_heartbeat_does_not_revive_a_lost_lease(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, lease_for=SHORT)
    await recover(backend, job.id)
    await backend.job_heartbeat([job.lease], 60.0)
    stored = await must_get(backend, job.id)
    assert (stored.state, stored.lease_token) == (State.QUEUED, None)


async def test_heartbeat_reports_cancel_requests(backend: Backend) -> None:
    asked = await enqueue_and_lease(backend)
    other = await enqueue_and_lease(backend)
    assert await backend.job_cancel(asked.id) is not None
    reply = await backend.job_heartbeat([asked.lease, other.lease], 30.0)
    assert reply.cancel_requested == {asked.id}
    assert reply.lost == frozenset()


async def test_recovery_ignores_waiting_and_ended_jobs(backend: Backend) -> None:
    queued = await enqueue(backend, queue="stays")
    done = await enqueue_and_lease(backend, lease_for=SHORT)
    assert await backend.job_complete_many([(done.lease, None)]) == [True]
    control = await enqueue_and_lease(backend, lease_for=SHORT)
    await recover(backend, control.id)
    assert {queued.id, done.id}.isdisjoint(j.id for j in await backend.job_recover_expired())
    assert (await must_get(backend, done.id)).state is State.SUCCEEDED
    assert (await must_get(backend, queued.id)).state is State.QUEUED


async def test_a_cancel_asked_of_a_job_whose_worker_died_ends_it_cancelled(
    backend: Backend,
) -> None:
    """Redelivering it would run a job its owner asked to stop (EXPIRE_CANCELLED)."""
    job = await enqueue_and_lease(backend, lease_for=SHORT, max_attempts=3)
    assert await backend.job_cancel(job.id) is not None
    recovered = await recover(backend, job.id)
    assert (recovered.state, recovered.lease_token, recovered.cancel_requested) == (
        State.CANCELLED, None, False,
    )  # fmt: skip
    assert recovered.finished_at is not None
    assert await backend.job_lease("w", [job.queue], 1, 30.0) == []
    kinds = [e.kind for e in await backend.event_list(job.id)]
    assert kinds[-2:] == ["lease_expired", "cancelled"]
