"""Sync enqueues store from the caller's own thread where the backend has a
thread store (SQLite, PostgreSQL, Redis and Redis Cluster), and through the bridge
loop everywhere else; either way the job stored is the one the async path stores,
the middleware runs, and waiting workers wake."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from offload import App, EventKind, Job, Middleware, NewJob, State
from offload.backends.redis import lua
from offload.errors import BackendError, UsageError
from offload.job import JobQuery
from offload.worker import Worker
from tests.servers.redis import node_ports, redis_cluster_url, start_server

DIRECT = frozenset({"sqlite", "postgres", "redis", "redis_cluster"})
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


class Seen(Middleware):
    """Plain hooks: where they ran, and what the caller's context held."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.contexts: list[str] = []
        self.stored: list[str] = []
        self.failures: list[BaseException] = []

    def before_enqueue_many(self, jobs: list[NewJob]) -> None:
        self.threads.append(threading.current_thread().name)
        self.contexts.append(REQUEST_ID.get())

    def after_enqueue_many(self, jobs: list[Job]) -> None:
        self.stored.extend(j.id for j in jobs)

    def on_enqueue_error(self, jobs: list[NewJob], error: BaseException) -> None:
        self.failures.append(error)


def _name(request: pytest.FixtureRequest) -> str:
    name: str = request.node.callspec.params["backend_url"]
    return name


def _fields(job: Job) -> tuple[Any, ...]:
    return (job.id, job.task, job.queue, job.tenant, job.state, job.payload, job.priority,
            job.attempts, job.max_attempts, job.created_at, job.run_at, job.unique_key)  # fmt: skip


async def _close(app: App) -> None:
    """This loop's instance, and the bridge loop's that bridged calls opened."""
    await app.close_async()
    await asyncio.to_thread(app.close)


def _in_thread(fn: Any, *args: Any) -> Any:
    """Call ``fn`` from a plain thread with no event loop, as a sync producer does."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)), name="producer")
    thread.start()
    thread.join(30)
    assert out, "the producer thread did not finish"
    return out[0]


async def test_a_sync_enqueue_stores_the_job_the_async_path_reads_back(
    backend_url: str, request: pytest.FixtureRequest
) -> None:
    seen = Seen()
    app = App(backend_url, middleware=[seen])

    @app.task(name="sync.add", queue="adds")
    def add(a: int, b: int) -> int:
        return a + b

    def produce() -> list[Job]:
        REQUEST_ID.set("r-17")
        return [add.enqueue(1, 2), *add.enqueue_many([(3, 4), {"a": 5, "b": 6}])]

    try:
        stored = await asyncio.to_thread(produce)
        for job in stored:
            read = await app.get_job_async(job.id)
            assert read is not None
            assert _fields(read) == _fields(job)
            assert read.state is State.QUEUED
            assert [e.kind for e in await app.events_async(job.id)] == [EventKind.ENQUEUED]
        assert len({j.payload for j in stored}) == 3
        assert seen.stored == [j.id for j in stored]
        direct = _name(request) in DIRECT
        # In the caller's thread, else on the bridge loop's; either way in a
        # copy of the caller's context.
        assert seen.contexts == ["r-17"] * 2
        assert all((name != "offload-sync") == direct for name in seen.threads), seen.threads
    finally:
        await _close(app)


async def test_a_sync_enqueue_of_a_stored_id_or_a_held_unique_key_returns_the_first(
    backend_url: str,
) -> None:
    app = App(backend_url)

    @app.task(name="sync.once")
    def once(n: int) -> None: ...

    def produce() -> tuple[Job, Job, Job, Job]:
        first = once.options(unique_key="k").enqueue(1)
        again = once.options(unique_key="k").enqueue(2)
        new = once.prepare(3)
        return first, again, *app.enqueue_new([new]), *app.enqueue_new([new])

    try:
        first, again, stored, repeat = await asyncio.to_thread(produce)
        assert (first.duplicate, again.duplicate, again.id) == (False, True, first.id)
        assert (stored.duplicate, repeat.duplicate, repeat.id) == (False, True, stored.id)
    finally:
        await _close(app)


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
def test_a_sync_bulk_enqueue_over_one_chunk_is_stored_whole(backend_url: str) -> None:
    seen = Seen()
    app = App(backend_url, middleware=[seen])

    @app.task(name="sync.bulk", queue="bulk")
    def bulk(n: int) -> None: ...

    try:
        items = [(n,) for n in range(2500)]
        jobs = bulk.enqueue_many(items)
        assert len({j.id for j in jobs}) == 2500
        again = app.enqueue_new([bulk.prepare(0)])  # a new id: stored
        assert not again[0].duplicate
        news = [bulk.prepare(n) for n in range(1200)]
        first, repeat = app.enqueue_new(news), app.enqueue_new(news)
        assert [j.duplicate for j in first] == [False] * 1200
        assert [j.duplicate for j in repeat] == [True] * 1200
        assert [j.id for j in repeat] == [j.id for j in first]
        assert len(app.list_jobs(JobQuery(queue="bulk", limit=5000))) == 2500 + 1 + 1200
        assert seen.threads == [threading.current_thread().name] * 4  # never the bridge's
    finally:
        app.close()


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
async def test_sync_enqueues_from_many_threads_at_once_are_all_stored(backend_url: str) -> None:
    app = App(backend_url)

    @app.task(name="sync.many", queue="many")
    def many(n: int) -> None: ...

    def produce(base: int) -> list[str]:
        return [many.enqueue(base + n).id for n in range(50)]

    try:
        ids = await asyncio.gather(*(asyncio.to_thread(produce, t * 100) for t in range(8)))
        flat = [i for chunk in ids for i in chunk]
        assert len(set(flat)) == 400
        counts = await (await app.backend()).job_counts()
        assert counts.get(("many", State.QUEUED)) == 400
    finally:
        await _close(app)


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
def test_sync_enqueues_go_on_while_another_thread_closes_the_app(backend_url: str) -> None:
    """A worker's shutdown closes the app (``close_async``) in a process whose
    other threads may still enqueue: their calls are stored, on connections
    opened again."""
    app = App(backend_url)

    @app.task(name="sync.closing", queue="closing")
    def closing(n: int) -> None: ...

    errors: list[BaseException] = []
    started = threading.Barrier(5)
    progress = threading.Condition()
    stored = [0]

    def produce(base: int) -> None:
        started.wait()
        try:
            for n in range(60):
                closing.enqueue(base + n)
                with progress:
                    stored[0] += 1
                    progress.notify_all()
        except BaseException as exc:
            errors.append(exc)

    def more_stored(than: int) -> None:
        """Until the producers stored a few more (or all of theirs)."""
        with progress:
            progress.wait_for(lambda: stored[0] >= min(than + 8, 240) or errors, timeout=30)

    threads = [threading.Thread(target=produce, args=(t * 100,)) for t in range(4)]
    try:
        for thread in threads:
            thread.start()
        started.wait()
        for _ in range(5):
            app.close()
            more_stored(than=stored[0])  # they reopened and went on
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert len(app.list_jobs(JobQuery(queue="closing", limit=1000))) == 240
    finally:
        app.close()


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
async def test_a_sync_enqueue_from_another_thread_wakes_a_waiting_worker(backend_url: str) -> None:
    """The worker polls every 30 s: only the enqueue's own wake-up can start the
    job within the few seconds the test waits."""
    app = App(backend_url)
    ran = asyncio.Event()
    loop = asyncio.get_running_loop()

    @app.task(name="sync.wake", queue="wake")
    def wake() -> None:
        loop.call_soon_threadsafe(ran.set)

    # The worker's backend is this loop's: note when it starts waiting.
    waiting = asyncio.Event()
    backend = await app.backend()
    wait_for_wake = backend.job_lease_on_wake

    async def noted(*args: Any, **kwargs: Any) -> list[Job]:
        waiting.set()
        return await wait_for_wake(*args, **kwargs)

    backend.job_lease_on_wake = noted  # type: ignore[method-assign]
    worker = Worker(app, ["wake"], concurrency=2, poll_interval=30.0, handle_signals=False)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(waiting.wait(), 10.0)
        started = time.monotonic()
        await asyncio.to_thread(wake.enqueue)
        await asyncio.wait_for(ran.wait(), 10.0)
        assert time.monotonic() - started < 10.0
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        await _close(app)


async def test_an_async_enqueue_hook_makes_a_sync_enqueue_take_the_bridge(
    backend_url: str,
) -> None:
    class AsyncHook(Middleware):
        threads: list[str] = []

        async def before_enqueue_many(self, jobs: list[NewJob]) -> None:
            await asyncio.sleep(0)  # needs a loop
            self.threads.append(threading.current_thread().name)

    hook = AsyncHook()
    app = App(backend_url, middleware=[hook])

    @app.task(name="sync.hooked")
    def hooked() -> None: ...

    try:
        job = await asyncio.to_thread(hooked.enqueue)
        assert await app.get_job_async(job.id) is not None
        assert hook.threads == ["offload-sync"]
    finally:
        await _close(app)


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
async def test_a_plain_hook_that_returns_something_to_await_is_refused_by_name(
    backend_url: str,
) -> None:
    class Sneaky(Middleware):
        def before_enqueue_many(self, jobs: list[NewJob]) -> Any:
            return asyncio.sleep(0)

    app = App(backend_url, middleware=[Sneaky()])

    @app.task(name="sync.sneaky")
    def sneaky() -> None: ...

    try:
        with pytest.raises(UsageError, match="async def"):
            await asyncio.to_thread(sneaky.enqueue)
        assert await app.list_jobs_async(JobQuery()) == []
    finally:
        await _close(app)


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
async def test_a_sync_enqueue_with_dependencies_waits_for_its_parent(backend_url: str) -> None:
    app = App(backend_url)

    @app.task(name="sync.step")
    def step(n: int) -> None: ...

    def produce() -> tuple[Job, Job]:
        parent = step.enqueue(1)
        return parent, step.options(depends_on=[parent]).enqueue(2)

    try:
        parent, child = await asyncio.to_thread(produce)
        assert (await app.get_job_async(parent.id)).state is State.QUEUED
        assert child.state is State.SCHEDULED
        assert child.depends_on == [parent.id]
    finally:
        await _close(app)


# Redis: the held connection and the server ---------------------------------------


@pytest.fixture
def own_server() -> Iterator[int]:
    proc, port = start_server()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _kill(port: int, name: str) -> int:
    client = redis.Redis(port=port)
    try:
        ids = [c["id"] for c in client.client_list() if c.get("name") == name]
        for client_id in ids:
            client.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        client.close()


def test_a_sync_enqueue_survives_its_connection_killed_and_the_library_lost(
    own_server: int,
) -> None:
    app = App(f"redis://127.0.0.1:{own_server}/0?prefix=syncheld&client_name=producer")

    @app.task(name="sync.held", queue="held")
    def held(n: int) -> None: ...

    admin = redis.Redis(port=own_server)
    try:
        first = held.enqueue(1)  # opens the held connection, loads the library
        assert _kill(own_server, "producer") >= 1
        second = held.enqueue(2)  # made again through the client's pool
        admin.function_flush()  # a server of this test's own
        third = held.enqueue(3)  # the library is taught again
        admin.function_flush()
        bulk = held.enqueue_many([(n,) for n in range(2500)])  # three chunks, pipelined
        stored = [app.get_job(j.id) for j in (first, second, third, bulk[0], bulk[-1])]
        assert [j.state for j in stored if j is not None] == [State.QUEUED] * 5
        assert len({j.id for j in bulk}) == 2500
        assert not any(j.duplicate for j in bulk)
    finally:
        admin.close()
        app.close()


def test_a_sync_enqueue_on_a_server_that_stops_answering_fails_within_its_timeout(
    own_server: int,
) -> None:
    seen = Seen()
    url = f"redis://127.0.0.1:{own_server}/0?prefix=syncpause&socket_timeout=0.3"
    app = App(url, middleware=[seen])

    @app.task(name="sync.paused", queue="p")
    def paused() -> None: ...

    admin = redis.Redis(port=own_server)
    try:
        paused.enqueue()
        admin.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
        started = time.monotonic()
        with pytest.raises(BackendError, match="redis"):
            paused.enqueue()
        assert time.monotonic() - started < 15.0
        assert [type(e) for e in seen.failures] == [BackendError]
    finally:
        with contextlib.suppress(Exception):
            admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        app.close()


# Redis Cluster: every call through the cluster client -----------------------------


def _getkeys(ports: list[int]) -> int:
    """How many ``COMMAND GETKEYS`` the cluster's nodes have answered."""
    total = 0
    for port in ports:
        client = redis.Redis(port=port)
        try:
            stats = client.info("commandstats")
            total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
        finally:
            client.close()
    return total


async def test_sync_enqueues_on_a_redis_cluster_store_from_the_calling_thread(
    request: pytest.FixtureRequest,
) -> None:
    """One job and a bulk of two chunks, each routed by its key: no node is
    asked for a call's keys first."""
    url = redis_cluster_url(request)
    seen = Seen()
    app = App(url, middleware=[seen])

    @app.task(name="sync.cluster", queue="cluster")
    def on_cluster(n: int) -> None: ...

    def produce() -> tuple[list[Job], Job, Job]:
        stored = [on_cluster.enqueue(0), *on_cluster.enqueue_many([(n,) for n in range(1, 1201)])]
        new = on_cluster.prepare(-1)
        [first] = app.enqueue_new([new])
        [again] = app.enqueue_new([new])
        return stored, first, again

    try:
        before = _getkeys(node_ports(url))
        stored, first, again = await asyncio.to_thread(_in_thread, produce)
        assert _getkeys(node_ports(url)) == before
        assert seen.threads == ["producer"] * 4
        assert len({j.id for j in stored}) == 1201
        assert (first.duplicate, again.duplicate, again.id) == (False, True, first.id)
        backend = await app.backend()
        for job in (stored[0], stored[1], stored[1000], stored[-1], first):
            read = await backend.job_get(job.id)
            assert read is not None
            assert _fields(read) == _fields(job)
        counts = await backend.job_counts()
        assert counts.get(("cluster", State.QUEUED)) == 1201 + 1
        leased = await backend.job_lease("w", ["cluster"], 3, 30.0)
        assert [j.state for j in leased] == [State.RUNNING] * 3
    finally:
        await _close(app)


def _delete_library(ports: list[int]) -> None:
    """On the test cluster (throwaway): as a node restarted without persistence."""
    for port in ports:
        client = redis.Redis(port=port)
        try:
            with contextlib.suppress(redis.ResponseError):  # not on this node
                client.function_delete(lua.library_name())
        finally:
            client.close()
        assert not _has_library(port)


def _has_library(port: int) -> bool:
    client = redis.Redis(port=port)
    try:
        return bool(client.function_list(library=lua.library_name()))
    finally:
        client.close()


def test_a_sync_enqueue_on_a_redis_cluster_survives_lost_connections_and_library(
    request: pytest.FixtureRequest,
) -> None:
    url = redis_cluster_url(request) + "&client_name=cluster-producer"
    ports = node_ports(url)
    app = App(url)

    @app.task(name="sync.cluster.lost", queue="lost")
    def lost(n: int) -> None: ...

    try:
        first = lost.enqueue(1)  # the store's client connects
        assert sum(_kill(port, "cluster-producer") for port in ports) >= 1
        second = lost.enqueue(2)  # the client's retries connect again
        _delete_library(ports)
        third = lost.enqueue(3)  # the library is taught again
        _delete_library(ports)
        bulk = lost.enqueue_many([(n,) for n in range(2500)])  # three chunks
        assert all(_has_library(port) for port in ports)  # every primary
        stored = [app.get_job(j.id) for j in (first, second, third, bulk[0], bulk[-1])]
        assert [j.state for j in stored if j is not None] == [State.QUEUED] * 5
        assert len({j.id for j in bulk}) == 2500
        assert not any(j.duplicate for j in bulk)
    finally:
        app.close()


def test_a_sync_enqueue_to_an_unreachable_server_is_a_backend_error() -> None:
    from tests.servers import free_port

    app = App(f"redis://127.0.0.1:{free_port()}/0?prefix=nowhere")

    @app.task(name="sync.nowhere")
    def nowhere() -> None: ...

    with pytest.raises(BackendError, match="redis"):
        nowhere.enqueue()
    app.close()


def test_a_sync_enqueue_into_an_sqlite_file_that_cannot_be_opened_names_the_file(
    tmp_path: Any,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    app = App(f"sqlite:///{blocker}/jobs.db")

    @app.task(name="sync.nofile")
    def nofile() -> None: ...

    with pytest.raises(BackendError, match=r"jobs\.db"):
        nofile.enqueue()
    app.close()


# PostgreSQL: the store's own pool ------------------------------------------------


def test_a_sync_enqueue_on_postgres_survives_its_connections_terminated(
    request: pytest.FixtureRequest,
) -> None:
    from tests.integration.test_postgres import kill_connections
    from tests.servers.postgres import postgres_clean_url

    name = f"sync-{time.monotonic_ns()}"
    url = f"{postgres_clean_url(request)}&application_name={name}"
    app = App(url)

    @app.task(name="sync.pg", queue="pg")
    def on_pg(n: int) -> None: ...

    try:
        first = on_pg.enqueue(1)  # the backend opened (schema migrated), then the store
        assert kill_connections(url) >= 2  # the bridge's pool and the store's
        second = on_pg.enqueue(2)
        assert [app.get_job(j.id).state for j in (first, second)] == [State.QUEUED] * 2
    finally:
        app.close()


# After a fork ----------------------------------------------------------------------


def _enqueue_in_child(app: App, task: Any, parent_store: object, out: Any) -> None:
    """In a forked child: sync enqueues on connections of its own, and a sync
    read through a bridge loop of its own (the parent's has no thread here)."""
    try:
        ids = [task.enqueue(n).id for n in range(20)]
        read = app.get_job(ids[0])
        out.put((app._direct_store() is not parent_store, read.id == ids[0], len(set(ids))))
    except BaseException as exc:  # the parent reports it
        out.put(repr(exc))


@pytest.mark.parametrize("backend_url", sorted(DIRECT), indirect=True)
def test_a_forked_child_enqueues_and_reads_on_connections_of_its_own(backend_url: str) -> None:
    import multiprocessing

    app = App(backend_url)

    @app.task(name="sync.forked", queue="forked")
    def forked(n: int) -> None: ...

    try:
        before = forked.enqueue(-1)  # the parent's store and bridge loop exist
        parent_store = app._direct_store()
        assert parent_store is not None
        context = multiprocessing.get_context("fork")
        out = context.Queue()
        child = context.Process(target=_enqueue_in_child, args=(app, forked, parent_store, out))
        child.start()
        answer = out.get(timeout=60)
        child.join(30)
        assert answer == (True, True, 20)
        assert child.exitcode == 0
        after = forked.enqueue(-2)  # the parent's own connections still serve it
        queued = app.list_jobs(JobQuery(queue="forked", limit=100))
        assert len(queued) == 22
        assert {before.id, after.id} <= {j.id for j in queued}
    finally:
        app.close()
