"""Hands every status change to the app's ``on_status_change`` callbacks.

One service per callback, so a slow or failing callback holds back only its own
cursor. The cursor is saved after each page the callback accepted: a crash
before that repeats the page (at-least-once). A callback that raises makes the
round fail; the supervisor backs off and runs it again from the saved cursor, and
stops the worker loudly if it keeps failing, as for any service.
"""

from __future__ import annotations

from offload.backends.base import Backend
from offload.status import StatusFollower

PAGE = 500


class StatusWatch:
    name = "status-changes"

    def __init__(self, backend: Backend, follower: StatusFollower) -> None:
        self.backend = backend
        self.follower = follower
        self.interval = follower.interval

    async def once(self) -> None:
        follower = self.follower
        after = await follower.cursor.load()
        while True:
            events = await self.backend.event_feed(after, follower.tenant, PAGE)
            if not events:
                return
            await follower.deliver(events)
            after = events[-1].id
            await follower.cursor.save(after)
            if len(events) < PAGE:
                return
