"""One follower of the event feed per web app, shared by every live stream.

Each stream polling the backend on its own cost one feed read per stream per poll
and one job read per stream per event: 200 dashboards made 4,000 reads a second
and pushed every other request to seconds (``bench/concurrency.py``). The hub
reads the feed once per poll, keeps the newest events with a snapshot of each
event's job, and streams whose cursor lies inside that window are served from
memory. A stream resuming from further back reads the backend until it reaches
the window, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
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
                self._task = asyncio.create_task(self._follow(store), name="offload-feed-hub")

    def _following(self) -> bool:
        """Following on this loop: a server (or a test client) that runs the app
        on a new loop gets a new follower, with that loop's backend."""
        task = self._task
        return (task is not None and not task.done()
                and task.get_loop() is asyncio.get_running_loop())  # fmt: skip

    def _reset(self) -> None:
        self.start, self.cursor = None, 0
        self._ids, self._events, self._snapshots = [], [], {}

    async def _follow(self, store: Backend) -> None:
        while True:
            try:
                batch = await store.event_feed(self.cursor, None, READ)
                await self._take(store, batch)
            except BackendError:
                await asyncio.sleep(OUTAGE_PAUSE)
                continue
            if len(batch) < READ:
                await asyncio.sleep(self.poll)

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

    def _trim(self) -> None:
        extra = len(self._events) - self.keep
        if extra <= 0:
            return
        dropped, self._events = self._events[:extra], self._events[extra:]
        self._ids = self._ids[extra:]
        self.start = dropped[-1].id
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
