"""A worker that cannot renew its leases gives its runs up before the broker
hands the jobs to another worker, so two runs of a job never overlap.

Fencing alone refuses a stale run's completion, but the run itself goes on
while the worker cannot reach the broker (down, slow, cut off), and after its
lease lapsed another worker starts the job. The broker's expiry is the time it
stored the last renewal plus the lease; the local deadline here is the time
this worker *asked* for that renewal (or for the lease) plus the lease, which
is never later. Measured on the local monotonic clock, so wall-clock skew
does not matter. The check runs in its own loop: a heartbeat call hanging on a
dead connection cannot hold it up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from offload.job import HeartbeatReply, Lease

log = logging.getLogger("offload.worker")


class LeaseClock:
    """When each held lease was last asked for or renewed (monotonic)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def asked(self, job_ids: Iterable[str], at: float) -> None:
        for job_id in job_ids:
            self._since[job_id] = max(self._since.get(job_id, at), at)

    def lapsed(self, held: Iterable[str], lease_seconds: float, now: float) -> set[str]:
        """The held leases whose local deadline has passed; forgets the rest of
        what it knew (jobs no longer held)."""
        held = set(held)
        self._since = {k: v for k, v in self._since.items() if k in held}
        return {k for k, v in self._since.items() if now - v >= lease_seconds}


class SelfFence:
    name = "self-fence"

    def __init__(
        self,
        clock: LeaseClock,
        leases: Callable[[], list[Lease]],
        on_reply: Callable[[HeartbeatReply], None],
        lease_seconds: float,
        every: float,
    ) -> None:
        self.clock = clock
        self.leases = leases
        self.on_reply = on_reply
        self.lease_seconds = lease_seconds
        self.interval = every

    async def once(self) -> None:
        held = [lease.job_id for lease in self.leases()]
        gone = self.clock.lapsed(held, self.lease_seconds, time.monotonic())
        if gone:
            log.warning("%d lease(s) not renewed for a lease period; giving the runs up",
                        len(gone))  # fmt: skip
            self.on_reply(HeartbeatReply(frozenset(gone), frozenset()))
