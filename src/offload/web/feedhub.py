"""One follower of the event feed per web app, shared by every live stream.

Each stream polling the backend on its own cost one feed read per stream per poll
and one job read per stream per event: 200 dashboards made 4,000 reads a second
and pushed every other request to seconds (``bench/concurrency.py``). The hub
reads the feed once per poll, keeps the newest events with a snapshot of each
event's job, and streams whose cursor lies inside that window are served from
memory. A stream resuming from further back reads the backend until it reaches
the window, so nothing is lost.

Streams also wait on the hub instead of sleeping a poll interval each: a stream
wakes when the hub took new events (or its heartbeat is due), and every stream
that sends one held event sends the same text, rendered once. With 200 streams
open, a poll of their own woke the server 4,000 times a second, and each event
was encoded 200 times (``bench/concurrency.py``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Callable
from typing import Any

from offload.backends.base import Backend
from offload.errors import BackendError
from offload.job import EVERY_TENANT, Event
from offload.web.resources import snapshot

KEEP = 5000
READ = 500
OUTAGE_PAUSE = 1.0


class FeedHub:
    def __init__(self, poll: float, keep: int = KEEP) -> None:
        self.poll = poll
        self.keep = keep
        self.start: int | None = None  # events with ids above it are held
        self.cursor = 0
        self._ids: list[int] = []
        self._events: list[Event] = []
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._frames: dict[int, str] = {}
        self.generation = 0  # rises each time the hub takes new events
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._opening = _LoopLock()

    async def read(self, store: Backend, after: int, tenant: str | None, limit: int
                   ) -> list[Event] | None:  # fmt: skip
        """Events after ``after`` (of ``tenant``), or ``None`` when ``after``
        lies before the window and the caller must read the backend."""
        await self._ensure(store)
        if self.start is None or after < self.start:
            return None
        found: list[Event] = []
        for event in self._events[bisect.bisect_right(self._ids, after) :]:
            if tenant is None or event.tenant in (tenant, EVERY_TENANT):
                found.append(event)
                if len(found) == limit:
                    break
        return found

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        return self._snapshots.get(job_id)

    def holds(self, event_id: int) -> bool:
        return self.start is not None and event_id > self.start

    def frame(self, event_id: int, make: Callable[[], str]) -> str:
        """The stream message of a held event, made by the first stream that
        sends it and shared by the rest."""
        held = self._frames.get(event_id)
        if held is None:
            held = make()
            if self.holds(event_id):
                self._frames[event_id] = held
        return held

    async def wait(self, store: Backend, seen: int, timeout: float) -> None:
        """Return once the hub has taken events since generation ``seen`` (what
        ``generation`` was before the caller's last read), or after ``timeout``.
        Nothing reaches the backend between two of the hub's reads, so a stream
        that waits here misses nothing it would have found by polling."""
        await self._ensure(store)
        arrived = self._arrived
        if self.generation != seen or timeout <= 0:
            return
        if arrived is None or arrived.is_set():  # the follower just ended
            await asyncio.sleep(min(timeout, self.poll))
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await arrived.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _ensure(self, store: Backend) -> None:
        if self._following():
            return
        async with self._opening:
            if not self._following():
                self._reset()
                self.cursor = await store.event_last_id()
                self.start = self.cursor
                self._arrived = asyncio.Event()
                self._task = asyncio.create_task(self._follow(store), name="offload-feed-hub")

    def _following(self) -> bool:
        """Following on this loop: a server (or a test client) that runs the app
        on a new loop gets a new follower, with that loop's backend."""
        task = self._task
        return (task is not None and not task.done()
                and task.get_loop() is asyncio.get_running_loop())  # fmt: skip

    def _reset(self) -> None:
        self.start, self.cursor = None, 0
        self._ids, self._events, self._snapshots, self._frames = [], [], {}, {}
        self._arrived = None

    async def _follow(self, store: Backend) -> None:
        try:
            while True:
                try:
                    batch = await store.event_feed(self.cursor, None, READ)
                    await self._take(store, batch)
                except BackendError:
                    await asyncio.sleep(OUTAGE_PAUSE)
                    continue
                if len(batch) < READ:
                    await asyncio.sleep(self.poll)
        finally:
            # Waiting streams read again (and so start a new follower) rather
            # than wait out their heartbeat; not when stopped, or replaced by
            # the follower of another loop, whose event this is not.
            if self._task is asyncio.current_task() and self._arrived is not None:
                self._arrived.set()

    async def _take(self, store: Backend, batch: list[Event]) -> None:
        """Snapshots first, events second: a stream that sees an event finds its
        job's snapshot already there."""
        for job_id in {e.job_id for e in batch if e.job_id is not None}:
            job = await store.job_get(job_id)
            if job is not None:
                self._snapshots[job_id] = snapshot(job)
        self._events.extend(batch)
        self._ids.extend(e.id for e in batch)
        if batch:
            self.cursor = batch[-1].id
            self._trim()
            self.generation += 1
            arrived, self._arrived = self._arrived, asyncio.Event()
            if arrived is not None:
                arrived.set()

    def _trim(self) -> None:
        extra = len(self._events) - self.keep
        if extra <= 0:
            return
        dropped, self._events = self._events[:extra], self._events[extra:]
        self._ids = self._ids[extra:]
        self.start = dropped[-1].id
        for event in dropped:
            self._frames.pop(event.id, None)
        held = {e.job_id for e in self._events}
        for job_id in [j for j in self._snapshots if j not in held]:
            del self._snapshots[job_id]


class _LoopLock:
    """An ``asyncio.Lock`` for the running loop: the hub may outlive a loop (a
    test client's), and a lock is bound to the loop that first waits on it."""

    def __init__(self) -> None:
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        await self._locks.setdefault(loop, asyncio.Lock()).acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._locks[asyncio.get_running_loop()].release()
