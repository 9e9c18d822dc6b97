"""Stops running jobs soon after someone asks to cancel them.

The heartbeat also reports cancel requests, but it runs every few seconds; this
loop asks only "which of my running jobs have a cancel request?", a cheap read,
several times a second while the worker has running jobs, so an async job is
aborted well within a second of the request on every backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from offload.backends.base import Backend
from offload.job import HeartbeatReply
from offload.worker.services import pause

log = logging.getLogger("offload.worker")


class CancelWatch:
    def __init__(
        self,
        backend: Backend,
        running: Callable[[], list[str]],
        on_reply: Callable[[HeartbeatReply], None],
        every: float,
        stop: asyncio.Event,
    ) -> None:
        self.backend = backend
        self.running = running
        self.on_reply = on_reply
        self.every = every
        self.stop = stop
        self._told: set[str] = set()

    async def run(self) -> None:
        while not await pause(self.stop, self.every):
            await self.check()

    async def check(self) -> None:
        ids = self.running()
        self._told &= set(ids)
        if not ids:
            return
        try:
            asked = await self.backend.job_cancels(ids)
        except Exception as exc:
            log.warning("cancel check failed: %s", exc)
            return
        fresh = asked - self._told
        if fresh:
            self._told |= fresh
            self.on_reply(HeartbeatReply(cancel_requested=frozenset(fresh)))
