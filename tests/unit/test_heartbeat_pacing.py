"""Heartbeats are asked one interval apart however long each takes to answer, so
a slow broker costs the self-fence's window one call, not one call per beat.

The broker here is the memory backend behind a delay: the same slowed call the
fault scenario s11 makes through a TCP proxy, without the proxy's connection
handshakes, so the pacing itself is what is measured.
"""

from __future__ import annotations

import asyncio
import time

from offload import App
from offload.backends.base import Backend
from offload.job import HeartbeatReply, Lease
from offload.worker.services.heartbeat import Heartbeat
from offload.worker.services.self_fence import LeaseClock, SelfFence
from offload.worker.supervisor import Supervisor

EVERY = 1.0
LEASE = 3.0  # the fence gives up at 2.4 s without a renewal asked for
SLOW_CALL = 1.5  # answered within the lease, but slower than the beats are due


class SlowHeartbeats:
    """The real backend, every heartbeat answered ``SLOW_CALL`` late; records
    when each was asked for."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.asked: list[float] = []

    async def job_heartbeat(self, leases: list[Lease], lease_seconds: float) -> HeartbeatReply:
        self.asked.append(time.monotonic())
        await asyncio.sleep(SLOW_CALL)
        return await self.backend.job_heartbeat(leases, lease_seconds)


def never_dies(name: str, error: BaseException) -> None:
    raise AssertionError(f"{name} reported dead: {error!r}")


async def test_slow_beats_are_asked_an_interval_apart_and_the_fence_keeps_the_run() -> None:
    app = App("memory://")

    @app.task(name="t.noop")
    def noop() -> None:
        return None

    try:
        await noop.enqueue_async()
        backend = await app.backend()
        [job] = await backend.job_lease("worker-1", ["default"], 1, LEASE)
        lease = Lease(job.id, job.lease_token or "")
        slow = SlowHeartbeats(backend)
        clock = LeaseClock(LEASE)
        clock.asked([job.id], time.monotonic())
        given_up: list[set[str]] = []
        heartbeat = Heartbeat(
            slow,  # type: ignore[arg-type]  # only job_heartbeat is called
            lambda: [lease], lambda reply: None, EVERY, LEASE, clock=clock,
        )  # fmt: skip
        fence = SelfFence(clock, lambda: [job.id], given_up.append)
        supervisor = Supervisor([heartbeat, fence], never_dies)
        supervisor.start()
        try:
            await asyncio.sleep(2 * LEASE)  # the run being kept: two whole leases
        finally:
            await supervisor.stop()
        gaps = [b - a for a, b in zip(slow.asked, slow.asked[1:], strict=False)]
        # Waiting for each answer before asking again would space the asks at
        # least SLOW_CALL apart, and a renewal asked at t would be known only at
        # t + 2 * SLOW_CALL = 3 s, past the fence's 2.4 s.
        assert len(gaps) >= 5, gaps
        assert max(gaps) <= EVERY + 0.25, gaps
        assert given_up == []
        assert (await backend.job_get(job.id)).lease_token == job.lease_token  # type: ignore[union-attr]
    finally:
        await app.close_async()
