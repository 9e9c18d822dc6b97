"""Keeps the leases of running jobs alive and learns of lost leases and cancel
requests, which it hands to the worker to act on.

A failed beat is survivable: the lease has two more periods to run, and the
supervisor retries the round well before the next one is due.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from offload.backends.base import Backend
from offload.job import HeartbeatReply, Lease

log = logging.getLogger("offload.worker")


class Heartbeat:
    name = "heartbeat"

    def __init__(
        self,
        backend: Backend,
        leases: Callable[[], list[Lease]],
        on_reply: Callable[[HeartbeatReply], None],
        every: float,
        lease_seconds: float,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.backend = backend
        self.leases = leases
        self.on_reply = on_reply
        self.interval = every
        self.lease_seconds = lease_seconds
        # Other holdings that live as long as the jobs' leases (limit slots).
        self.renew = renew

    async def once(self) -> None:
        leases = self.leases()
        if not leases:
            return
        reply = await self.backend.job_heartbeat(leases, self.lease_seconds)
        if reply.lost or reply.cancel_requested:
            self.on_reply(reply)
        if self.renew is not None:
            try:
                await self.renew()
            except Exception as exc:  # the leases are renewed; the slots can wait a beat
                log.warning("renewing limit slots failed: %s", exc)
