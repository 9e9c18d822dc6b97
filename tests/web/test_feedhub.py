"""The shared feed follower serves streams inside its window and sends the
others to the backend, so a stream never loses an event to it."""

from __future__ import annotations

import asyncio

from offload.backends.memory import MemoryBackend
from offload.testing import eventually
from offload.web.feedhub import FeedHub
from tests.contract.helpers import new_job


async def test_the_hub_holds_a_window_and_sends_older_cursors_to_the_backend() -> None:
    store = MemoryBackend("memory://")
    await store.open()
    hub = FeedHub(poll=0.01, keep=3)
    try:
        assert await hub.read(store, 0, None, 10) == []  # empty feed: the window starts at 0
        await store.job_enqueue_many([new_job("t.a"), new_job("t.b", tenant="acme"),
                                      new_job("t.c"), new_job("t.d", tenant="acme")])  # fmt: skip
        feed = await store.event_feed(0)

        async def caught_up() -> bool:
            return hub.cursor == feed[-1].id

        await eventually(caught_up)
        assert hub.start is not None
        assert await hub.read(store, 0, None, 10) is None  # before the window
        held = await hub.read(store, hub.start, None, 10)
        assert held == [e for e in feed if e.id > hub.start]
        acme = await hub.read(store, hub.start, "acme", 10)
        assert acme == [e for e in feed if e.id > hub.start and e.tenant == "acme"]
        assert all(hub.snapshot(e.job_id) is not None for e in held)
    finally:
        await hub.stop()
        await store.close()


async def test_streams_wake_when_the_hub_takes_events_and_share_each_frame() -> None:
    """A waiting stream returns once the hub took new events, not after a poll
    of its own; a held event's message is made once for every stream."""
    store = MemoryBackend("memory://")
    await store.open()
    hub = FeedHub(poll=0.01)
    try:
        assert await hub.read(store, 0, None, 10) == []
        seen = hub.generation
        await hub.wait(store, seen, 0.05)  # nothing new: returns at its timeout
        assert hub.generation == seen
        waiting = asyncio.create_task(hub.wait(store, seen, 60))
        [job] = await store.job_enqueue_many([new_job("t.a")])
        await asyncio.wait_for(waiting, 10)
        assert hub.generation > seen
        await hub.wait(store, seen, 60)  # already past ``seen``: no wait at all
        [event] = await hub.read(store, 0, None, 10) or []
        assert event.job_id == job.id
        made: list[int] = []

        def make() -> str:
            made.append(event.id)
            return f"frame {event.id}"

        assert hub.frame(event.id, make) == hub.frame(event.id, make) == f"frame {event.id}"
        assert made == [event.id]
        # An event before the window is not kept: each stream makes its own.
        assert (hub.frame(0, lambda: "first"), hub.frame(0, lambda: "second")) == (
            "first", "second")  # fmt: skip
    finally:
        await hub.stop()
        await store.close()
