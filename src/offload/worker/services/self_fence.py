"""A worker that cannot renew its leases gives its runs up before the broker
hands the jobs to another worker, so two runs of a job never overlap.

Fencing by lease token refuses a stale run's completion, but the run itself
goes on while the worker cannot reach the broker (down, slow, cut off), and
once its lease lapsed another worker starts the job: two runs at once. The
broker's expiry is the moment it stored the last renewal plus the lease; the
local deadline here counts from the moment this worker *asked* for that
renewal (or for the lease), which is never later, and gives up a fifth of a
lease before it, so that the cancelled run has ended before the broker could
let anyone else start it. Measured on the local monotonic clock: wall-clock
skew does not matter. The check runs in a loop of its own, so a heartbeat
call hanging on a dead connection cannot hold it up.

A run given up stays given up: its lease is never renewed again, even once the
broker answers, and its outcome is not recorded, so the job is redelivered by
lease-expiry recovery like a job whose worker died (its attempt counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("offload.worker")

# How early, as a share of the lease, a worker gives up a lease it could not renew.
MARGIN = 0.2


class LeaseClock:
    """When each held lease was last asked for or renewed (monotonic seconds),
    and which of them the worker gave up."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._since: dict[str, float] = {}
        self._given_up: set[str] = set()

    @property
    def give_up_after(self) -> float:
        return self.lease_seconds * (1 - MARGIN)

    def asked(self, job_ids: Iterable[str], at: float) -> None:
        """A lease or renewal asked for at ``at`` was granted; a slow reply to an
        earlier request never moves a deadline back."""
        for job_id in job_ids:
            self._since[job_id] = max(self._since.get(job_id, at), at)

    def given_up(self, job_id: str) -> bool:
        return job_id in self._given_up

    def lapsed(self, held: Iterable[str], now: float) -> set[str]:
        """The held leases whose local deadline passed since the last call, each
        reported once; what it knew of jobs no longer held is forgotten."""
        held = set(held)
        self._since = {k: v for k, v in self._since.items() if k in held}
        self._given_up &= held
        due = {k for k, v in self._since.items() if now - v >= self.give_up_after}
        fresh = due - self._given_up
        self._given_up |= fresh
        return fresh


class SelfFence:
    name = "self-fence"

    def __init__(
        self,
        clock: LeaseClock,
        held: Callable[[], list[str]],
        give_up: Callable[[set[str]], None],
    ) -> None:
        self.clock = clock
        self.held = held
        self.give_up = give_up
        # Checked often enough that a deadline is acted on within half the margin.
        self.interval = clock.lease_seconds * MARGIN / 2

    async def once(self) -> None:
        gone = self.clock.lapsed(self.held(), time.monotonic())
        if gone:
            log.warning("%d lease(s) not renewed for %.1fs; giving those runs up",
                        len(gone), self.clock.give_up_after)  # fmt: skip
            self.give_up(gone)
