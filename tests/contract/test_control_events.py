"""Pauses, resumes and finished batches on the event feed: events of no job that
live streams follow with the same cursor as the jobs' transitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from uuid_utils import uuid7

from offload import event_data as ed
from offload.backends import Backend
from offload.job import EVERY_TENANT, Event, NewBatch
from offload.lifecycle import EventKind, State

from .helpers import enqueue

E = EventKind
SCOPES = [(None, None), (None, "mail"), ("acme", None), ("acme", "mail")]


def _control(feed: list[Event]) -> list[tuple[EventKind, str, dict[str, object]]]:
    return [(e.kind, e.tenant, e.data) for e in feed if e.job_id is None]


@pytest.mark.parametrize(("tenant", "queue"), SCOPES)
async def test_pause_and_resume_append_one_event_each(
    backend: Backend, tenant: str | None, queue: str | None
) -> None:
    await backend.control_pause(tenant, queue)
    await backend.control_pause(tenant, queue)  # already paused: no second event
    assert await backend.control_resume(tenant, queue) is True
    assert await backend.control_resume(tenant, queue) is False  # nothing lifted: no event
    owner = EVERY_TENANT if tenant is None else tenant
    scope = {"tenant": tenant, "queue": queue}
    assert _control(await backend.event_feed()) == [
        (E.PAUSED, owner, scope), (E.RESUMED, owner, scope),
    ]  # fmt: skip


async def test_control_events_keep_the_feed_order_and_cursor(backend: Backend) -> None:
    before = await enqueue(backend)
    await backend.control_pause(None, "mail")
    after = await enqueue(backend)
    feed = await backend.event_feed()
    assert [(e.job_id, e.kind) for e in feed] == [
        (before.id, E.ENQUEUED), (None, E.PAUSED), (after.id, E.ENQUEUED),
    ]  # fmt: skip
    assert feed[0].id < feed[1].id < feed[2].id
    assert [e.job_id for e in await backend.event_feed(feed[0].id)] == [None, after.id]
    assert await backend.event_last_id() >= feed[-1].id
    assert await backend.event_list(before.id) == [feed[0]]


async def test_a_tenants_feed_has_its_own_pauses_and_those_of_every_tenant(
    backend: Backend,
) -> None:
    await backend.control_pause("acme", None)
    await backend.control_pause("globex", "mail")
    await backend.control_pause(None, "mail")
    await backend.control_pause(None, None)
    acme = [(e.data["tenant"], e.data["queue"]) for e in await backend.event_feed(0, "acme")]
    assert acme == [("acme", None), (None, "mail"), (None, None)]
    globex = [e.data["tenant"] for e in await backend.event_feed(0, "globex")]
    assert globex == ["globex", None, None]
    assert len(await backend.event_feed(0, None)) == 4


async def test_finishing_a_batch_appends_batch_finished_once(backend: Backend) -> None:
    batch = await backend.batch_create(NewBatch(id=str(uuid7()), tenant="acme", name="b"))
    assert await backend.batch_finish(batch.id, ["c1"]) is True
    assert await backend.batch_finish(batch.id, ["c2"]) is False
    expected = [(E.BATCH_FINISHED, "acme", ed.batch_finished(batch.id, ["c1"]))]
    assert _control(await backend.event_feed(0, "acme")) == expected
    assert _control(await backend.event_feed(0, "globex")) == []


async def test_purge_ages_out_control_events(backend: Backend) -> None:
    await backend.control_pause(None, None)
    [paused] = await backend.event_feed()
    kept_job = await enqueue(backend)
    await backend.job_purge(paused.at - timedelta(seconds=5), [State.SUCCEEDED])
    assert [e.kind for e in await backend.event_feed()] == [E.PAUSED, E.ENQUEUED]
    await backend.job_purge(paused.at + timedelta(seconds=5), [State.SUCCEEDED])
    assert [e.job_id for e in await backend.event_feed()] == [kept_job.id]
