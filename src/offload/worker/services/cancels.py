"""Stops running jobs soon after someone asks to cancel them.

The heartbeat also reports cancel requests, but it runs every few seconds; this
service asks only "which of my running jobs have a cancel request?", a cheap read,
several times a second while the worker has running jobs, so an async job is
aborted well within a second of the request on every backend.
"""

from __future__ import annotations

from collections.abc import Callable

from offload.backends.base import Backend
from offload.job import HeartbeatReply


class CancelWatch:
    name = "cancels"

    def __init__(
        self,
        backend: Backend,
        running: Callable[[], list[str]],
        on_reply: Callable[[HeartbeatReply], None],
        every: float,
    ) -> None:
        self.backend = backend
        self.running = running
        self.on_reply = on_reply
        self.interval = every
        self._told: set[str] = set()

    async def once(self) -> None:
        ids = self.running()
        self._told &= set(ids)
        if not ids:
            return
        fresh = await self.backend.job_cancels(ids) - self._told
        if fresh:
            self._told |= fresh
            self.on_reply(HeartbeatReply(cancel_requested=frozenset(fresh)))
