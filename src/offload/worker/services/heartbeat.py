"""Keeps the leases of running jobs alive and learns of lost leases and cancel
requests, which it hands to the worker to act on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from offload.backends.base import Backend
from offload.job import HeartbeatReply, Lease
from offload.worker.services import pause

log = logging.getLogger("offload.worker")


class Heartbeat:
    def __init__(
        self,
        backend: Backend,
        leases: Callable[[], list[Lease]],
        on_reply: Callable[[HeartbeatReply], None],
        every: float,
        lease_seconds: float,
        stop: asyncio.Event,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.backend = backend
        self.leases = leases
        self.on_reply = on_reply
        self.every = every
        self.lease_seconds = lease_seconds
        self.stop = stop
        # Other holdings that live as long as the jobs' leases (limit slots).
        self.renew = renew

    async def run(self) -> None:
        while not await pause(self.stop, self.every):
            await self.beat()

    async def beat(self) -> None:
        leases = self.leases()
        if not leases:
            return
        try:
            reply = await self.backend.job_heartbeat(leases, self.lease_seconds)
        except Exception as exc:
            # A missed beat is survivable: the lease has two more periods to run.
            log.warning("heartbeat failed: %s", exc)
            return
        if reply.lost or reply.cancel_requested:
            self.on_reply(reply)
        if self.renew is not None:
            try:
                await self.renew()
            except Exception as exc:
                log.warning("renewing limit slots failed: %s", exc)
