"""Keeps the leases of running jobs alive and learns of lost leases and cancel
requests, which it hands to the worker to act on.

A failed beat is survivable: the lease has two more periods to run, and the
supervisor retries the round well before the next one is due. Each beat that
succeeds tells the lease clock when it was asked for: past a lease without one,
the worker gives its runs up (``self_fence``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from offload.backends.base import Backend
from offload.job import HeartbeatReply, Lease
from offload.worker.services.self_fence import LeaseClock

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
        clock: LeaseClock | None = None,
    ) -> None:
        self.backend = backend
        self.leases = leases
        self.on_reply = on_reply
        self.interval = every
        self.lease_seconds = lease_seconds
        # Other holdings that live as long as the jobs' leases (limit slots).
        self.renew = renew
        self.clock = clock
        # Set when a lease was granted long after it was asked for (a lease that
        # came with a long wait for work): renewing it now keeps the self-fence,
        # which counts from the asking, from giving up a healthy run.
        self.woken = asyncio.Event()

    async def once(self) -> None:
        leases = self.leases()
        if not leases:
            return
        asked = time.monotonic()
        reply = await self.backend.job_heartbeat(leases, self.lease_seconds)
        if self.clock is not None:
            self.clock.asked([x.job_id for x in leases if x.job_id not in reply.lost], asked)
        if reply.lost or reply.cancel_requested:
            self.on_reply(reply)
        if self.renew is not None:
            try:
                await self.renew()
            except Exception as exc:  # the leases are renewed; the slots can wait a beat
                log.warning("renewing limit slots failed: %s", exc)
