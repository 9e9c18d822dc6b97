"""Reads asked at the same moment share one call; later ones read afresh."""

from __future__ import annotations

import asyncio

import pytest

from offload.errors import BackendError
from offload.testing import eventually
from offload.web.shared import SharedReads


async def test_concurrent_reads_share_one_call_and_a_later_read_calls_again() -> None:
    reads = SharedReads()
    gate = asyncio.Event()
    calls: list[int] = []

    async def count() -> int:
        calls.append(1)
        await gate.wait()
        return len(calls)

    waiting = [asyncio.create_task(reads.read("k", count)) for _ in range(5)]
    other = asyncio.create_task(reads.read("other", count))

    async def started() -> bool:
        return len(calls) == 2  # one for "k", one for "other"

    await eventually(started)
    assert all(not w.done() for w in waiting)
    gate.set()
    assert set(await asyncio.gather(*waiting)) == {2}
    await other
    assert await reads.read("k", count) == 3  # nothing in flight: a new call


async def test_a_failed_read_fails_every_waiter_and_a_hung_up_waiter_cancels_nothing() -> None:
    reads = SharedReads()
    gate, began = asyncio.Event(), asyncio.Event()

    async def broken() -> int:
        began.set()
        await gate.wait()
        raise BackendError("down")

    first = asyncio.create_task(reads.read("k", broken))
    second = asyncio.create_task(reads.read("k", broken))
    # Tasks start in order: both have joined the read once the call itself runs.
    await began.wait()
    first.cancel()  # the client of the first request hung up
    gate.set()
    with pytest.raises(BackendError, match="down"):
        await second
    with pytest.raises(asyncio.CancelledError):
        await first
