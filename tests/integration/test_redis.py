"""The Redis backend's own promises, beyond the contract suite: one hash slot per
deployment, recovery after its connections are killed, prompt wake-ups, and a
worker that rides out a connection kill without losing or repeating a job."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from offload import App
from offload.backends import create_backend
from offload.backends.redis import RedisBackend, lua
from offload.backends.redis.codec import to_us
from offload.errors import BackendError
from offload.job import ErrorInfo, JobQuery, NewJob
from offload.lifecycle import EventKind, State
from offload.worker import Worker
from tests.contract.helpers import new_job
from tests.servers.redis import node_ports, redis_cluster_url, redis_url, start_server

BOOM = ErrorInfo("ValueError", "boom")


@pytest.fixture(params=["redis", "redis_cluster"])
def url(request: pytest.FixtureRequest) -> str:
    return redis_url(request) if request.param == "redis" else redis_cluster_url(request)


@pytest.fixture
async def backend(url: str) -> AsyncIterator[RedisBackend]:
    instance = create_backend(url)
    assert isinstance(instance, RedisBackend)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


def _node_urls(url: str) -> list[str]:
    """Plain connections to every node the URL's deployment may use."""
    return [f"redis://127.0.0.1:{port}/0" for port in node_ports(url)]


async def _keys_of(url: str) -> list[bytes]:
    found: list[bytes] = []
    for node in _node_urls(url):
        client = aioredis.Redis.from_url(node)
        try:
            pattern = "{" + _prefix(url) + "}*"
            found += [k async for k in client.scan_iter(match=pattern, count=5000)]
        finally:
            await client.aclose()
    return found


async def _exercise(backend: RedisBackend) -> None:
    """Touch every kind of key: queues, delays, uniques, leases, ends, events."""
    await backend.job_enqueue_many([new_job(queue="a"), new_job(queue="b", delay=3600),
                                    new_job(unique_key="u", tenant="acme")])  # fmt: skip
    [running] = await backend.job_lease("w", ["a"], 1, 30.0)
    assert await backend.job_save_progress(running.lease, b"cp", 0.5, "half")
    assert await backend.job_fail(running.lease, BOOM, None) is not None
    await backend.wait_for_jobs(["a", "b"], 0.01)


async def test_every_key_of_a_deployment_hashes_to_one_slot(
    backend: RedisBackend, url: str
) -> None:
    await _exercise(backend)
    keys = await _keys_of(url)
    kinds = {k.split(b":")[1] for k in keys}
    assert {b"job", b"events", b"feed", b"ready", b"delayed", b"idx", b"unique"} <= kinds
    assert len({key_slot(k) for k in keys}) == 1


_MOMENTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2000, 2, 29, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 12, 1, 22, 0, 0, 123456, tzinfo=UTC),
    datetime(2100, 3, 1, 0, 0, 0, 500000, tzinfo=UTC),
    datetime(1900, 1, 1, 6, 7, 8, 90, tzinfo=UTC),
    datetime(2250, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # near 2**53 us, Lua's limit
] + [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=d, microseconds=d * 7919) for d in
     range(0, 3000, 37)]  # fmt: skip


async def test_the_scripts_write_times_as_isoformat_does(request: pytest.FixtureRequest) -> None:
    """Events carry ``run_at`` as the text Python's ``isoformat()`` gives, written
    by the scripts' own date formatter (Redis Lua has no ``os.date``)."""
    url = redis_url(request)
    client = aioredis.Redis.from_url(url.split("?")[0])
    tag = "{" + _prefix(url) + "}"
    # The prelude as the library holds it, run once as a script of its own.
    body = "local out = {}\nfor i = 2, #ARGV do out[#out + 1] = iso(tonumber(ARGV[i])) end\n"
    try:
        texts = await client.eval(
            "local keys, args = KEYS, ARGV\n" + lua.prelude() + "\nbegin(keys, args)\n"
            + body + "return out", 1, tag + ":seq", tag, *[str(to_us(m)) for m in _MOMENTS],
        )  # fmt: skip
    finally:
        await client.aclose()
    assert [t.decode() for t in texts] == [m.isoformat() for m in _MOMENTS]


async def _kill_connections(url: str, name: str) -> int:
    killed = 0
    for node in _node_urls(url):
        client = aioredis.Redis.from_url(node)
        try:
            for info in await client.client_list():
                if info.get("name") == name:
                    await client.client_kill_filter(_id=info["id"])
                    killed += 1
        finally:
            await client.aclose()
    return killed


async def test_every_method_works_after_its_connections_are_killed(
    backend: RedisBackend, url: str
) -> None:
    waiting = (await backend.job_enqueue_many([new_job(queue="k")]))[0]
    await backend.job_enqueue_many([new_job(queue="k") for _ in range(3)])
    assert await _kill_connections(url, f"offload:{_prefix(url)}") >= 1
    leased = await backend.job_lease("w", ["k"], 3, 30.0)
    assert len(leased) == 3
    assert (await backend.job_heartbeat([leased[0].lease], 30.0)).lost == frozenset()
    assert await backend.job_save_progress(leased[0].lease, b"cp", 0.1, None)
    assert await backend.job_complete_many([(leased[0].lease, b"1")]) == [True]
    assert await backend.job_fail(leased[1].lease, BOOM, 60.0) is not None
    assert await backend.job_reject(leased[2].lease, BOOM) is not None
    assert await backend.job_redrive(leased[2].id) is not None
    assert await backend.job_cancel(leased[2].id) is not None
    assert await backend.job_get(waiting.id) is not None
    assert len(await backend.job_list(JobQuery())) == 4
    assert (await backend.job_counts()).get(("k", State.SUCCEEDED)) == 1
    assert await backend.event_list(leased[0].id)
    assert await backend.event_latest(leased[0].id) is not None
    assert await backend.event_feed(limit=5)
    assert await backend.job_recover_expired() == []
    assert await backend.job_purge(await backend.now() - timedelta(days=1), [State.DEAD]) == 0
    await backend.wait_for_jobs(["k"], 0.01)


async def test_a_one_job_enqueue_after_its_connection_was_killed_is_stored(
    backend: RedisBackend, url: str
) -> None:
    """One-job enqueues run on a connection held out of the pool (held.py);
    when it is killed, the call is made again through the client."""
    await backend.job_enqueue_many([new_job(queue="h")])
    assert await _kill_connections(url, f"offload:{_prefix(url)}") >= 1
    [job] = await backend.job_enqueue_many([new_job(queue="h")])
    assert not job.duplicate
    assert await backend.job_get(job.id) is not None
    assert (await backend.job_counts()).get(("h", State.QUEUED)) == 2


async def test_a_cancelled_enqueue_leaves_the_next_one_working(backend: RedisBackend) -> None:
    first = asyncio.create_task(backend.job_enqueue_many([new_job(queue="c")]))
    await asyncio.sleep(0)  # one turn of the loop: the call is on the wire
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    [job] = await backend.job_enqueue_many([new_job(queue="c")])
    assert await backend.job_get(job.id) is not None
    assert [e.kind for e in await backend.event_list(job.id)] == [EventKind.ENQUEUED]


async def test_concurrent_one_job_enqueues_are_all_stored(backend: RedisBackend) -> None:
    """The held connection serves one call at a time; the others take the pool."""
    news = [new_job(queue="g") for _ in range(20)]
    stored = await asyncio.gather(*(backend.job_enqueue_many([n]) for n in news))
    assert [s[0].id for s in stored] == [n.id for n in news]
    assert (await backend.job_counts()).get(("g", State.QUEUED)) == 20


async def test_an_unreachable_server_is_a_backend_error() -> None:
    from tests.servers import free_port

    dead = create_backend(f"redis://127.0.0.1:{free_port()}/0?prefix=nowhere")
    with pytest.raises(BackendError):
        await dead.job_get("x")
    await dead.close()


async def test_an_enqueue_from_a_clone_wakes_a_waiter_well_before_its_timeout(
    backend: RedisBackend,
) -> None:
    writer = backend.clone()
    await writer.open()
    try:
        start = time.monotonic()
        waiter = asyncio.create_task(backend.wait_for_jobs(["mail"], 30.0))
        while not waiter.done() and time.monotonic() - start < 5.0:
            await writer.job_enqueue_many([new_job(queue="mail")])
            await asyncio.wait({waiter}, timeout=0.2)
        assert waiter.done()
        assert time.monotonic() - start < 5.0
    finally:
        await writer.close()


async def test_a_bulk_enqueue_over_one_chunk_is_stored_whole(backend: RedisBackend) -> None:
    news: list[NewJob] = [new_job(queue="bulk") for _ in range(2500)]
    jobs = await backend.job_enqueue_many(news)
    assert [j.id for j in jobs] == [n.id for n in news]
    assert (await backend.job_counts()).get(("bulk", State.QUEUED)) == 2500
    again = await backend.job_enqueue_many(news[:10])
    assert [j.id for j in again] == [n.id for n in news[:10]]
    assert (await backend.job_counts()).get(("bulk", State.QUEUED)) == 2500


@pytest.mark.slow
async def test_a_worker_rides_out_a_connection_kill_running_each_job_once(url: str) -> None:
    name = "offload-worker-under-test"
    app = App(f"{url}&client_name={name}")
    runs: dict[int, int] = {}
    killed = asyncio.Event()
    well_under_way = asyncio.Event()

    @app.task
    async def work(n: int) -> int:
        runs[n] = runs.get(n, 0) + 1
        if len(runs) >= 60:
            well_under_way.set()
        await asyncio.sleep(0.005)
        return n

    jobs = await work.enqueue_many_async([(n,) for n in range(200)])
    worker = Worker(app, queues=["default"], concurrency=10, burst=True,
                               handle_signals=False)  # fmt: skip

    async def kill_mid_run() -> None:
        await well_under_way.wait()
        assert await _kill_connections(url, name) >= 1
        killed.set()

    try:
        await asyncio.wait_for(asyncio.gather(worker.run(), kill_mid_run()), timeout=60)
        assert killed.is_set()
        done = [await app.get_job_async(j.id) for j in jobs]
        assert {j.state for j in done} == {State.SUCCEEDED}
        assert sorted(runs) == list(range(200))
        assert set(runs.values()) == {1}
    finally:
        await app.close_async()


async def _delete_library(urls: list[str]) -> None:
    for node in urls:
        client = aioredis.Redis.from_url(node)
        try:
            with contextlib.suppress(aioredis.ResponseError):  # not on this node
                await client.function_delete(lua.library_name())
        finally:
            await client.aclose()


@pytest.fixture
def own_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A deployment on a server of this test's own (standalone), or on the test
    cluster (throwaway already): the test deletes the function library."""
    if request.param == "redis_cluster":
        yield redis_cluster_url(request)
        return
    proc, port = start_server()
    try:
        yield f"redis://127.0.0.1:{port}/0?prefix=lost"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("own_url", ["redis", "redis_cluster"], indirect=True)
async def test_every_path_teaches_a_server_that_lost_the_library(own_url: str) -> None:
    """A restart without persistence (or ``FUNCTION FLUSH``) leaves the server
    without offload's functions: each way a call goes out (the held
    connection, the pool, a pipelined bulk enqueue, a lease behind a blocking
    pop) loads the library again and carries on."""
    nodes = [f"redis://127.0.0.1:{port}/0" for port in node_ports(own_url)]
    backend = create_backend(own_url)
    await backend.open()
    try:
        await _delete_library(nodes)
        [one] = await backend.job_enqueue_many([new_job(queue="l")])  # held connection
        await _delete_library(nodes)
        many = await backend.job_enqueue_many([new_job(queue="l") for _ in range(1200)])
        await _delete_library(nodes)
        assert await backend.job_get(one.id) is not None  # through the pool
        await _delete_library(nodes)
        leased = await backend.job_lease_on_wake("w", ["l"], 5, 30.0, 0.2)
        if not leased:  # the lease behind the pop found no library: the next one leases
            leased = await backend.job_lease_on_wake("w", ["l"], 5, 30.0, 0.2)
        assert len(leased) == 5
        assert len(many) == 1200
        assert not any(j.duplicate for j in many)
        counts = await backend.job_counts()
        assert counts.get(("l", State.QUEUED)) == 1196
        assert counts.get(("l", State.RUNNING)) == 5
    finally:
        await backend.close()


async def test_a_cluster_routes_each_call_without_asking_a_node_for_its_keys(
    request: pytest.FixtureRequest,
) -> None:
    """redis-py finds an ``FCALL``'s slot by sending ``COMMAND GETKEYS`` first,
    a round trip per call; offload's cluster client routes by the call's key."""
    url = redis_cluster_url(request)
    nodes = [aioredis.Redis.from_url(n) for n in _node_urls(url)]

    async def getkeys() -> int:
        total = 0
        for node in nodes:
            stats = await node.info("commandstats")
            total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
        return total

    backend = create_backend(url)
    await backend.open()
    try:
        before = await getkeys()
        for _ in range(20):
            await backend.job_enqueue_many([new_job(queue="g")])
        assert (await backend.job_counts()).get(("g", State.QUEUED)) == 20
        assert await getkeys() == before
    finally:
        await backend.close()
        for node in nodes:
            await node.aclose()


async def test_a_cluster_node_that_alone_lost_the_library_is_taught_it(
    request: pytest.FixtureRequest,
) -> None:
    """A new or restarted primary lacks the library while the others have it:
    the answer to "is it loaded?" counts only if every primary says yes."""
    url = redis_cluster_url(request)
    backend = create_backend(url)
    await backend.open()
    tag = "{" + _prefix(url) + "}"
    try:
        [job] = await backend.job_enqueue_many([new_job(queue="o")])
        deleted = 0
        for node in _node_urls(url):
            client = aioredis.Redis.from_url(node)
            try:
                await client.exists(f"{tag}:seq")  # only the slot's owner answers
            except aioredis.ResponseError:  # MOVED: another node owns the slot
                continue
            else:
                deleted += 1
                await client.function_delete(lua.library_name())
            finally:
                await client.aclose()
        assert deleted == 1
        assert await backend.job_get(job.id) is not None
        [again] = await backend.job_enqueue_many([new_job(queue="o")])
        assert not again.duplicate
    finally:
        await backend.close()


async def test_a_held_enqueue_on_a_server_that_stops_answering_is_bounded_by_the_timeout() -> None:
    """The held connection bounds each call by the client's ``socket_timeout``
    itself (held.py): a server that stops answering makes the call fail within
    the client's timeouts and retries, long before it answers again."""
    proc, port = start_server()
    backend = create_backend(f"redis://127.0.0.1:{port}/0?prefix=held&socket_timeout=0.3")
    admin = aioredis.Redis(port=port)
    try:
        await backend.open()
        await backend.job_enqueue_many([new_job(queue="t")])  # opens the held connection
        await admin.execute_command("CLIENT", "PAUSE", "20000", "WRITE")  # FCALL enqueue writes
        started = time.monotonic()
        with pytest.raises(BackendError):
            await backend.job_enqueue_many([new_job(queue="t")])
        assert time.monotonic() - started < 15.0
    finally:
        with contextlib.suppress(Exception):
            await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
        await backend.close()
        proc.terminate()
        proc.wait(10)
