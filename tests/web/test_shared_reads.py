"""Reads asked at the same moment share one call; later ones read afresh."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

import httpx
import pytest

from offload.errors import BackendError
from offload.job import Job, JobQuery
from offload.testing import eventually
from offload.web.shared import SharedReads

T = TypeVar("T")


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


def held_counter() -> tuple[asyncio.Event, list[int], Callable[[], Awaitable[int]]]:
    """A read that counts its calls and answers, with the number of calls made
    by then, once the gate opens."""
    gate = asyncio.Event()
    calls: list[int] = []

    async def count() -> int:
        calls.append(1)
        await gate.wait()
        return len(calls)

    return gate, calls, count


async def test_concurrent_reads_share_one_call_and_a_later_read_calls_again() -> None:
    reads = SharedReads()
    gate, calls, count = held_counter()

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


async def test_a_read_begun_before_a_change_is_not_joined() -> None:
    reads = SharedReads()
    gate, calls, count = held_counter()

    before = asyncio.create_task(reads.read("k", count))
    await eventually(holds(lambda: len(calls) == 1))
    reads.changed()  # an enqueue answered meanwhile
    after = asyncio.create_task(reads.read("k", count))
    await eventually(holds(lambda: len(calls) == 2))
    joined = asyncio.create_task(reads.read("k", count))  # joins the newer read
    gate.set()
    assert await asyncio.gather(before, after, joined) == [2, 2, 2]
    assert len(calls) == 2


async def test_identical_listings_share_a_read_and_a_client_sees_its_own_enqueue() -> None:
    """Over HTTP: two identical listings in flight cost one backend read; a client
    whose enqueue was answered then lists afresh and finds its job, while the
    listings begun before it keep the older answer."""
    from offload.web import create_app
    from tests.web.conftest import make_app

    app = make_app("memory://")
    web = create_app(app)
    store = await app.backend()
    shared: SharedReads = web.state.offload_shared
    gate = asyncio.Event()
    reads: list[object] = []
    joined: list[object] = []
    real_list, real_read = store.job_list, shared.read

    async def held_list(query: JobQuery) -> list[Job]:
        found = await real_list(query)  # what the store held when the read began
        reads.append(query)
        await gate.wait()
        return found

    async def counted_read(key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        joined.append(key)
        return await real_read(key, call)

    store.job_list = held_list  # type: ignore[method-assign]
    shared.read = counted_read  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        first = asyncio.create_task(client.get("/api/v1/jobs"))
        second = asyncio.create_task(client.get("/api/v1/jobs"))
        await eventually(holds(lambda: len(joined) == 2 and len(reads) == 1))
        made = await client.post("/api/v1/jobs", json={"task": "add", "args": [1, 2]})
        assert made.status_code == 202, made.text
        third = asyncio.create_task(client.get("/api/v1/jobs"))
        await eventually(holds(lambda: len(reads) == 2))
        gate.set()
        answers = await asyncio.gather(first, second, third)
    assert len(reads) == 2  # the second listing joined the first's read
    assert [len(a.json()["jobs"]) for a in answers] == [0, 0, 1]
    assert answers[2].json()["jobs"][0]["id"] == made.json()["id"]
    await app.close_async()
