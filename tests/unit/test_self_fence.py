"""The worker's self-fence: a lease not renewed for a lease period, counted
from when it was asked for, is given up."""

from __future__ import annotations

from offload.job import HeartbeatReply, Lease
from offload.worker.services.self_fence import LeaseClock, SelfFence


def test_a_lease_lapses_a_lease_period_after_it_was_last_asked_for() -> None:
    clock = LeaseClock()
    clock.asked(["a", "b"], at=100.0)
    clock.asked(["b"], at=104.0)  # b renewed
    assert clock.lapsed(["a", "b"], 5.0, now=104.9) == set()
    assert clock.lapsed(["a", "b"], 5.0, now=105.0) == {"a"}
    assert clock.lapsed(["a", "b"], 5.0, now=109.0) == {"a", "b"}


def test_an_older_ask_never_moves_the_deadline_back_and_ended_jobs_are_forgotten() -> None:
    clock = LeaseClock()
    clock.asked(["a"], at=10.0)
    clock.asked(["a"], at=5.0)  # a slow reply to an earlier beat
    assert clock.lapsed(["a"], 5.0, now=14.0) == set()
    assert clock.lapsed([], 5.0, now=100.0) == set()
    clock.asked(["a"], at=200.0)
    assert clock.lapsed(["a"], 5.0, now=201.0) == set()


async def test_the_fence_hands_lapsed_leases_to_the_worker_as_lost() -> None:
    clock = LeaseClock()
    clock.asked(["old"], at=0.0)  # monotonic 0: long ago
    replies: list[HeartbeatReply] = []
    fence = SelfFence(clock, lambda: [Lease("old", "t1"), Lease("new", "t2")],
                      replies.append, lease_seconds=5.0, every=1.0)  # fmt: skip
    clock.asked(["new"], at=float("inf"))
    await fence.once()
    assert replies == [HeartbeatReply(frozenset({"old"}), frozenset())]
