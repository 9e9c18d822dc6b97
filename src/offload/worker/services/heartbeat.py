"""Keeps the leases of running jobs alive and learns of lost leases and cancel
requests, which it hands to the worker to act on.

A failed beat is survivable: the lease has two more periods to run, and the
supervisor retries the round well before the next one is due. Each beat that
succeeds tells the lease clock when it was asked for: past a lease without one,
the worker gives its runs up (``self_fence``).

Beats are asked for one interval apart, counted from the asking, and a slow one
does not hold the next back: it goes on answering in the background while the
next is asked. Waiting for each answer before counting the interval (as a plain
service loop does) spaced the asks an interval *plus* the call apart, so a call
slowed to a fraction of the lease used up the fence's whole window (twice the
call plus the interval) and the worker gave up runs the broker still held; one
slow call held every later renewal behind it. Now the window holds the interval
plus one call, and one stalled call is covered by the next ask.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from offload.backends.base import Backend
from offload.job import HeartbeatReply, Lease
from offload.worker.services.self_fence import LeaseClock

log = logging.getLogger("offload.worker")


# Beats left answering at once, at most: more would only queue on a broker
# that is already slow, and a beat asked that long ago renews nothing in time.
MAX_IN_FLIGHT = 3


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
        self.every = every
        self.lease_seconds = lease_seconds
        # Other holdings that live as long as the jobs' leases (limit slots).
        self.renew = renew
        self.clock = clock
        # Set when a lease was granted long after it was asked for (a lease that
        # came with a long wait for work): renewing it now keeps the self-fence,
        # which counts from the asking, from giving up a healthy run.
        self.woken = asyncio.Event()
        self._last_asked = -math.inf
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def interval(self) -> float:
        """Until the next beat is due: one interval after the last was asked,
        half of one while a beat is still unanswered (a cold connection, a
        stalled call), so another has time to answer before the fence's deadline."""
        every = self.every / 2 if self._in_flight else self.every
        return max(0.0, self._last_asked + every - time.monotonic())

    async def once(self) -> None:
        leases = self.leases()
        if not leases or len(self._in_flight) >= MAX_IN_FLIGHT:
            self._last_asked = time.monotonic()
            return
        self._last_asked = asked = time.monotonic()
        beat = asyncio.ensure_future(self._beat(leases, asked))
        try:
            done, _ = await asyncio.wait({beat}, timeout=self.every / 2)
        except asyncio.CancelledError:
            beat.cancel()
            raise
        if beat in done:
            beat.result()  # a failure is the supervisor's to retry
            return
        self._in_flight.add(beat)
        beat.add_done_callback(self._answered_late)

    def _answered_late(self, beat: asyncio.Task[None]) -> None:
        self._in_flight.discard(beat)
        if not beat.cancelled() and beat.exception() is not None:
            log.warning("a slow heartbeat failed: %r", beat.exception())

    async def _beat(self, leases: list[Lease], asked: float) -> None:
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

    async def close(self) -> None:
        """Beats still waiting for a broker that never answered end with the worker."""
        for beat in list(self._in_flight):
            beat.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=1.0)
