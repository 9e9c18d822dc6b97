"""The worker's self-fence: a lease not renewed for most of a lease period,
counted from when it was asked for, is given up once and never renewed again."""

from __future__ import annotations

import time

from offload.worker.services.self_fence import LeaseClock, SelfFence


def test_a_lease_is_given_up_before_a_lease_period_since_it_was_last_asked_for() -> None:
    clock = LeaseClock(5.0)
    clock.asked(["a", "b"], at=100.0)
    clock.asked(["b"], at=103.0)  # b renewed
    assert clock.lapsed(["a", "b"], now=103.9) == set()
    assert clock.lapsed(["a", "b"], now=104.0) == {"a"}  # 4 s: a fifth of the lease early
    assert clock.lapsed(["a", "b"], now=107.0) == {"b"}  # a is told once
    assert clock.given_up("a")
    assert clock.given_up("b")


def test_a_slow_reply_to_an_older_request_never_moves_the_deadline_back() -> None:
    clock = LeaseClock(5.0)
    clock.asked(["a"], at=10.0)
    clock.asked(["a"], at=5.0)
    assert clock.lapsed(["a"], now=13.9) == set()
    assert clock.lapsed(["a"], now=14.0) == {"a"}


def test_a_job_no_longer_held_is_forgotten() -> None:
    clock = LeaseClock(5.0)
    clock.asked(["a"], at=0.0)
    assert clock.lapsed(["a"], now=10.0) == {"a"}
    assert clock.lapsed([], now=10.0) == set()
    assert not clock.given_up("a")
    clock.asked(["a"], at=200.0)  # the same job leased again later
    assert clock.lapsed(["a"], now=201.0) == set()


async def test_the_fence_gives_up_only_the_lapsed_runs() -> None:
    clock = LeaseClock(5.0)
    now = time.monotonic()
    clock.asked(["stale"], at=now - 10.0)
    clock.asked(["fresh"], at=now)
    given_up: list[set[str]] = []
    fence = SelfFence(clock, lambda: ["stale", "fresh"], given_up.append)
    await fence.once()
    await fence.once()
    assert given_up == [{"stale"}]
    assert fence.interval == 0.5  # acts within half the margin of its deadline
