"""Events: each transition appends exactly the events lifecycle.py names for it,
oldest first, with the latest one at hand and ``after`` as a paging cursor."""

from __future__ import annotations

from datetime import timedelta

from offload import lifecycle as lc
from offload.backends import Backend
from offload.lifecycle import EventKind, Transition

from .helpers import BOOM, enqueue, enqueue_and_lease, kinds, lease_one, must_get, new_job, recover


def expect(*transitions: Transition) -> list[EventKind]:
    return [kind for t in transitions for kind in t.events]


STARTED = expect(lc.ENQUEUE, lc.START)


async def test_enqueue_appends_enqueued(backend: Backend) -> None:
    job = await enqueue(backend)
    assert await kinds(backend, job.id) == expect(lc.ENQUEUE)


async def test_enqueue_later_appends_scheduled(backend: Backend) -> None:
    job = await enqueue(backend, delay=3600)
    assert await kinds(backend, job.id) == expect(lc.ENQUEUE_LATER)


async def test_lease_then_succeed(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await kinds(backend, job.id) == STARTED
    await backend.job_complete_many([(job.lease, None)])
    assert await kinds(backend, job.id) == [*STARTED, *lc.SUCCEED.events]


async def test_fail_with_retry(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_fail(job.lease, BOOM, 60.0)
    assert await kinds(backend, job.id) == [*STARTED, *lc.RETRY.events]


async def test_fail_dead(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_fail(job.lease, BOOM, None)
    assert await kinds(backend, job.id) == [*STARTED, *lc.FAIL.events]


async def test_reject_records_dead_without_failed(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_reject(job.lease, BOOM)
    assert await kinds(backend, job.id) == [*STARTED, *lc.REJECT.events]


async def test_requeue(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_requeue(job.lease, None)
    assert await kinds(backend, job.id) == [*STARTED, *lc.REQUEUE.events]


async def test_cancel_waiting(backend: Backend) -> None:
    job = await enqueue(backend)
    await backend.job_cancel(job.id)
    assert await kinds(backend, job.id) == expect(lc.ENQUEUE, lc.CANCEL_WAITING)


async def test_cancel_running_requests_then_confirms(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_cancel(job.id)
    # A repeated request while one is pending records nothing new.
    await backend.job_cancel(job.id)
    assert await kinds(backend, job.id) == [*STARTED, EventKind.CANCEL_REQUESTED]
    await backend.job_cancel_confirm(job.lease)
    assert await kinds(backend, job.id) == [
        *STARTED, EventKind.CANCEL_REQUESTED, *lc.CANCEL_RUNNING.events,
    ]  # fmt: skip


async def test_expire_and_expire_dead(backend: Backend) -> None:
    again = await enqueue_and_lease(backend, lease_for=0.3, max_attempts=2)
    last = await enqueue_and_lease(backend, lease_for=0.3, max_attempts=1)
    await recover(backend, again.id, last.id)
    assert await kinds(backend, again.id) == [*STARTED, *lc.EXPIRE.events]
    assert await kinds(backend, last.id) == [*STARTED, *lc.EXPIRE_DEAD.events]


async def test_redrive(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_fail(job.lease, BOOM, None)
    await backend.job_redrive(job.id)
    assert await kinds(backend, job.id) == [*STARTED, *lc.FAIL.events, *lc.REDRIVE.events]


async def test_progress_appends_only_when_progress_is_given(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    await backend.job_save_progress(job.lease, b"cp", None, None)
    await backend.job_save_progress(job.lease, None, 0.5, "half")
    assert await kinds(backend, job.id) == [*STARTED, EventKind.PROGRESS]


async def test_a_full_life_in_order_with_increasing_ids(backend: Backend) -> None:
    job = await enqueue_and_lease(backend, tenant="acme")
    await backend.job_fail(job.lease, BOOM, 0.0)
    second = await lease_one(backend, [job.queue])
    await backend.job_complete_many([(second.lease, b"1")])
    events = await backend.event_list(job.id)
    assert [e.kind for e in events] == [*STARTED, *lc.RETRY.events, *lc.START.events,
                                         *lc.SUCCEED.events]  # fmt: skip
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {(e.job_id, e.tenant) for e in events} == {(job.id, "acme")}
    ats = [e.at for e in events]
    assert ats == sorted(ats)
    assert all(a.utcoffset() == timedelta(0) for a in ats)


async def test_event_latest_is_the_last_event(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    assert await backend.event_latest(job.id) == (await backend.event_list(job.id))[-1]
    await backend.job_complete_many([(job.lease, None)])
    latest = await backend.event_latest(job.id)
    assert latest is not None
    assert latest.kind is EventKind.SUCCEEDED
    assert latest == (await backend.event_list(job.id))[-1]


async def test_unknown_job_has_no_events(backend: Backend) -> None:
    unknown = "00000000-0000-7000-8000-000000000000"
    assert await backend.event_list(unknown) == []
    assert await backend.event_latest(unknown) is None


async def test_after_pages_through_events(backend: Backend) -> None:
    job = await enqueue_and_lease(backend)
    for i in range(5):
        await backend.job_save_progress(job.lease, None, i / 5, None)
    events = await backend.event_list(job.id)
    assert len(events) == 7
    assert await backend.event_list(job.id, after=events[2].id) == events[3:]
    assert await backend.event_list(job.id, after=events[2].id, limit=2) == events[3:5]
    assert await backend.event_list(job.id, after=events[-1].id) == []


async def test_events_of_other_jobs_stay_apart(backend: Backend) -> None:
    a = await enqueue(backend)
    b = await enqueue_and_lease(backend)
    assert await kinds(backend, a.id) == expect(lc.ENQUEUE)
    assert {e.job_id for e in await backend.event_list(b.id)} == {b.id}


async def test_event_feed_follows_all_jobs_by_cursor_and_tenant(backend: Backend) -> None:
    a = await enqueue(backend, tenant="acme")
    b = await enqueue(backend, tenant="globex")
    feed = await backend.event_feed()
    assert [(e.job_id, e.kind) for e in feed] == [(a.id, "enqueued"), (b.id, "enqueued")]
    c = await enqueue_and_lease(backend, tenant="acme")
    newer = await backend.event_feed(after=feed[-1].id)
    assert [(e.job_id, e.kind) for e in newer] == [(c.id, "enqueued"), (c.id, "started")]
    assert [e.job_id for e in await backend.event_feed(tenant="acme")] == [a.id, c.id, c.id]
    assert len(await backend.event_feed(limit=2)) == 2
    assert (await must_get(backend, c.id)).tenant == "acme"


async def test_event_last_id_is_the_newest_event_of_the_feed(backend: Backend) -> None:
    assert await backend.event_last_id() == 0
    await backend.job_enqueue_many([new_job("tests.a"), new_job("tests.b", tenant="acme")])
    feed = await backend.event_feed(0)
    assert feed
    assert await backend.event_last_id() == feed[-1].id
    # Every event after it is new, for any tenant's follower.
    assert await backend.event_feed(await backend.event_last_id("acme")) == []
