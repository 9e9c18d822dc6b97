"""The PostgreSQL backend beyond the contract: migrations, transactional enqueue,
LISTEN/NOTIFY, killed connections and a restarted server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import psycopg
import pytest
from uuid_utils import uuid7

from offload import App, JobContext, State
from offload.backends.postgres import (
    PostgresBackend,
    _effects,
    _sql,
    enqueue_in,
    enqueue_in_sync,
    migrate,
)
from offload.backends.postgres._url import parse_url
from offload.backends.postgres.listener import Listener
from offload.errors import BackendError
from offload.job import CancelOutcome, ErrorInfo, JobQuery, NewJob
from offload.lifecycle import EventKind
from offload.worker import Worker
from tests.servers import unavailable
from tests.servers.postgres import Cluster, bin_dir, postgres_url

T = TypeVar("T")
DEADLINE = 30.0


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    """A fresh schema; its connections carry a name of their own so a test can
    find and kill exactly them."""
    return f"{postgres_url(request)}&application_name=offload-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def backend(url: str) -> AsyncIterator[PostgresBackend]:
    instance = PostgresBackend(url)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


def new_job(queue: str = "default", **fields: Any) -> NewJob:
    return NewJob(id=str(uuid7()), task="tests.pg", payload=b"{}", queue=queue, **fields)


def libpq(url: str) -> str:
    return parse_url(url).conninfo


def kill_connections(url: str) -> int:
    """Terminate every session of ``url``'s application name and wait for each
    to be gone; returns how many there were."""
    name = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["application_name"]
    admin = libpq(url).split("?", 1)[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


async def within(check: Callable[[], Awaitable[T]], what: str, timeout: float = DEADLINE) -> T:
    """Retry ``check`` until it returns without ``BackendError``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except BackendError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing after {timeout}s") from None
        await asyncio.sleep(0.1)


# migrations ---------------------------------------------------------------------


async def test_migrate_applies_each_version_once(url: str) -> None:
    first = await migrate(url)
    assert first
    assert first == sorted(first)
    assert await migrate(url) == []
    schema = parse_url(url).schema
    async with await psycopg.AsyncConnection.connect(libpq(url)) as conn:
        cur = await conn.execute(f'SELECT version FROM "{schema}".migrations ORDER BY 1')
        assert [v for (v,) in await cur.fetchall()] == first


async def test_concurrent_migrations_apply_once(url: str) -> None:
    results = await asyncio.gather(*(migrate(url) for _ in range(4)))
    applied = [versions for versions in results if versions]
    assert len(applied) == 1, f"expected one migrator to do the work, got {results}"
    backend = PostgresBackend(url)
    await backend.open()
    try:
        assert len(await backend.job_enqueue_many([new_job()])) == 1
    finally:
        await backend.close()


async def test_open_without_migrate_leaves_the_schema_alone(url: str) -> None:
    backend = PostgresBackend(url + "&migrate=false")
    with pytest.raises(BackendError, match="run `offload migrate`"):
        await backend.open()  # at open, saying what to do, not at the first query
    await backend.close()
    await migrate(url)
    backend = PostgresBackend(url + "&migrate=false")
    await backend.open()
    try:
        assert len(await backend.job_enqueue_many([new_job()])) == 1
    finally:
        await backend.close()


# transactional enqueue --------------------------------------------------------------


async def test_enqueue_in_a_rolled_back_transaction_leaves_no_job(
    backend: PostgresBackend, url: str
) -> None:
    schema = parse_url(url).schema
    async with await psycopg.AsyncConnection.connect(libpq(url)) as conn:
        [job] = await enqueue_in(conn, [new_job()], schema)
        assert job.state is State.QUEUED
        await conn.rollback()
    assert await backend.job_get(job.id) is None
    assert await backend.event_list(job.id) == []
    assert await backend.job_lease("w", ["default"], 10, 30.0) == []


async def test_enqueue_in_a_committed_transaction_stores_the_job(
    backend: PostgresBackend, url: str
) -> None:
    schema = parse_url(url).schema
    async with await psycopg.AsyncConnection.connect(libpq(url)) as conn:
        await conn.execute("CREATE TEMP TABLE orders (id int)")
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (1)")
            [job] = await enqueue_in(conn, [new_job(unique_key="order-1")], schema)
            # Not visible to anyone else until the caller commits.
            assert await backend.job_get(job.id) is None
    stored = await backend.job_get(job.id)
    assert stored is not None
    assert stored.state is State.QUEUED
    assert [j.id for j in await backend.job_lease("w", ["default"], 10, 30.0)] == [job.id]


async def test_enqueue_in_sync_follows_the_callers_transaction(
    backend: PostgresBackend, url: str
) -> None:
    schema = parse_url(url).schema

    def write(commit: bool) -> str:
        with psycopg.connect(libpq(url)) as conn:
            [job] = enqueue_in_sync(conn, [new_job()], schema)
            conn.commit() if commit else conn.rollback()
            return job.id

    kept, dropped = await asyncio.to_thread(write, True), await asyncio.to_thread(write, False)
    assert await backend.job_get(kept) is not None
    assert await backend.job_get(dropped) is None


async def test_enqueue_in_returns_the_live_job_holding_the_unique_key(
    backend: PostgresBackend, url: str
) -> None:
    [first] = await backend.job_enqueue_many([new_job(unique_key="k")])
    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
        [again] = await enqueue_in(conn, [new_job(unique_key="k")], parse_url(url).schema)
    assert again == first
    assert (first.duplicate, again.duplicate) == (False, True)


async def test_enqueue_is_idempotent_by_job_id(backend: PostgresBackend) -> None:
    # What makes retrying an enqueue after a lost connection safe.
    new = new_job()
    [first] = await backend.job_enqueue_many([new])
    [again] = await backend.job_enqueue_many([new])
    assert again == first
    assert (first.duplicate, again.duplicate) == (False, True)
    assert len(await backend.job_list(JobQuery())) == 1


async def test_a_bulk_enqueue_marks_only_the_rows_it_did_not_insert(
    backend: PostgresBackend,
) -> None:
    [held] = await backend.job_enqueue_many([new_job(unique_key="k")])
    fresh, keyed, again = await backend.job_enqueue_many(
        [new_job(), new_job(unique_key="k"), new_job(unique_key="k")]
    )
    assert [j.duplicate for j in (fresh, keyed, again)] == [False, True, True]
    assert keyed.id == again.id == held.id


# transitions rendered from the lifecycle ----------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 120000, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 18, 30, 5, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["whole-second", "trailing-zeros", "one-microsecond", "other-zone"],
)
async def test_a_stamped_due_time_reads_like_python_isoformat(url: str, moment: datetime) -> None:
    # The session zone is not UTC on purpose: to_jsonb would follow it.
    async with await psycopg.AsyncConnection.connect(libpq(url)) as conn:
        await conn.execute("SET TIME ZONE 'Asia/Kolkata'")
        query = f"SELECT {_effects.iso_utc('%(t)s::timestamptz')}"
        cur = await conn.execute(query.encode(), {"t": moment})
        [(text,)] = await cur.fetchall()
    assert text == moment.astimezone(UTC).isoformat()


async def test_a_cancel_waiting_on_a_lease_answers_with_what_the_lease_left(
    backend: PostgresBackend, url: str
) -> None:
    # job_cancel locks the job's latest version before it chooses a branch, so a
    # lease committed while it waits turns it into a request, not a lost cancel.
    [job] = await backend.job_enqueue_many([new_job("race")])
    lease = _sql.queries(parse_url(url).schema)["job_lease"]
    params = {"queues": ["race"], "limit": 1, "worker": "w", "lease_for": 60.0}
    async with await psycopg.AsyncConnection.connect(libpq(url)) as conn:
        cur = await conn.execute(lease, params)
        assert len(await cur.fetchall()) == 1
        cancel = asyncio.create_task(backend.job_cancel(job.id))
        await within(lambda: _waits_on_a_lock(url), "the cancel never waited on the lease")
        assert not cancel.done()
        await conn.commit()
    answer = await cancel
    assert answer is not None
    assert answer.outcome is CancelOutcome.REQUESTED
    assert (answer.job.state, answer.job.cancel_requested) == (State.RUNNING, True)
    kinds = [e.kind for e in await backend.event_list(job.id)]
    assert kinds.count(EventKind.CANCEL_REQUESTED) == 1


async def test_a_lease_walks_the_ready_index_when_every_job_has_one_tenant(
    backend: PostgresBackend, url: str
) -> None:
    # One tenant is the common case. The planner used to read the paused-tenant
    # filter as keeping no row of a one-tenant table and leased through a
    # sequential scan and a sort: a whole-table read per lease, 100 jobs/s with
    # a million jobs queued. The choice shows from ~10,000 rows up.
    for _ in range(20):
        await backend.job_enqueue_many([new_job("big") for _ in range(1000)])
    schema = parse_url(url).schema
    params = {"queues": ["big"], "limit": 50, "worker": "w", "lease_for": 60.0}
    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
        await conn.execute(f'ANALYZE "{schema}".jobs')
        cur = await conn.execute(b"EXPLAIN " + _sql.queries(schema)["job_lease"], params)
        plan = "\n".join(str(row[0]) for row in await cur.fetchall())
    assert "jobs_ready" in plan, plan


async def _waits_on_a_lock(url: str) -> None:
    name = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["application_name"]
    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND wait_event_type = 'Lock'",
            (name,),
        )
        [(count,)] = await cur.fetchall()
    if not count:
        raise BackendError("no session waits on a lock yet")


# LISTEN / NOTIFY ---------------------------------------------------------------------


async def _woken_by(backend: PostgresBackend, enqueue: Callable[[], Awaitable[Any]]) -> float:
    """Seconds until a 30-second ``wait_for_jobs`` returns after ``enqueue``,
    enqueueing again every short while in case the first came before LISTEN."""
    waiter = asyncio.create_task(backend.wait_for_jobs(["mail"], DEADLINE))
    start = time.monotonic()
    while not waiter.done() and time.monotonic() - start < 5.0:
        await enqueue()
        await asyncio.wait({waiter}, timeout=0.25)
    assert waiter.done(), "wait_for_jobs was not woken by an enqueue"
    await waiter
    return time.monotonic() - start


async def test_notify_wakes_a_waiter_well_before_its_timeout(backend: PostgresBackend) -> None:
    async def enqueue() -> None:
        await other.job_enqueue_many([new_job("mail")])

    other = backend.clone()
    await other.open()
    try:
        await _woken_by(backend, enqueue)  # asserts the wake came, not the 30 s timeout
    finally:
        await other.close()


async def test_a_waiter_on_another_queue_is_not_woken(backend: PostgresBackend) -> None:
    # A missed wake-up must not be confused with a false one: "mail" is listened
    # to first, then only "sms" jobs arrive.
    await _woken_by(backend, lambda: backend.job_enqueue_many([new_job("mail")]))
    waiter = asyncio.create_task(backend.wait_for_jobs(["mail"], 1.0))
    start = time.monotonic()
    await backend.job_enqueue_many([new_job("sms")])
    await waiter
    assert time.monotonic() - start >= 0.9


async def test_a_committed_enqueue_in_wakes_the_waiter(backend: PostgresBackend, url: str) -> None:
    async def enqueue() -> None:
        async with await psycopg.AsyncConnection.connect(libpq(url)) as conn:
            await enqueue_in(conn, [new_job("mail")], parse_url(url).schema)
            await conn.commit()

    assert await _woken_by(backend, enqueue) < 2.0


# killed connections ----------------------------------------------------------------


async def _exercise_every_method(backend: PostgresBackend) -> None:
    """One call of each method, each of which must succeed on its first try."""
    assert (await backend.now()).utcoffset() is not None
    queue = f"q-{uuid7()}"
    jobs = await backend.job_enqueue_many([new_job(queue) for _ in range(4)])
    leased = await backend.job_lease("w", [queue], 4, 30.0)
    assert {j.id for j in leased} == {j.id for j in jobs}
    a, b, c, d = leased
    assert (await backend.job_heartbeat([a.lease], 30.0)).lost == frozenset()
    assert await backend.job_save_progress(a.lease, b"cp", 0.5, "half")
    assert await backend.job_complete_many([(a.lease, b"1")]) == [True]
    assert await backend.job_fail(b.lease, ErrorInfo("E", "x"), None) is not None
    assert await backend.job_reject(c.lease, ErrorInfo("E", "y")) is not None
    assert await backend.job_requeue(d.lease, None) is not None
    assert await backend.job_redrive(b.id) is not None
    assert (await backend.job_cancel(b.id)) is not None
    assert await backend.job_recover_expired() == []
    assert len(await backend.job_list(JobQuery())) >= 4
    assert await backend.job_counts()
    assert await backend.event_list(a.id)
    assert await backend.event_latest(a.id) is not None
    assert await backend.event_feed(limit=5)


async def test_every_method_works_after_its_connections_are_killed(
    backend: PostgresBackend, url: str
) -> None:
    await _exercise_every_method(backend)
    # Grow the pool and start the listener, so there is more than one to kill.
    await asyncio.gather(*(backend.job_counts() for _ in range(8)))
    await backend.wait_for_jobs(["mail"], 0.05)
    assert await asyncio.to_thread(kill_connections, url) >= 2
    await _exercise_every_method(backend)
    # The listener reconnected by itself.
    await _woken_by(backend, lambda: backend.job_enqueue_many([new_job("mail")]))


# a restarted server --------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    folder = bin_dir()
    if folder is None:
        unavailable("initdb/pg_ctl not installed: cannot run a server of our own")
        return
    server = Cluster(folder).init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.mark.slow
async def test_a_server_restart_loses_no_committed_job(cluster: Cluster) -> None:
    backend = PostgresBackend(cluster.url("offload") + "&pool_timeout=2")
    await backend.open()
    try:
        before = await backend.job_enqueue_many([new_job() for _ in range(50)])
        first = await backend.job_lease("w", ["default"], 10, 60.0)
        assert await backend.job_complete_many([(j.lease, None) for j in first]) == [True] * 10
        await asyncio.to_thread(cluster.restart)

        after = await within(lambda: backend.job_enqueue_many([new_job() for _ in range(5)]),
                             "enqueue after restart")  # fmt: skip
        counts = await backend.job_counts()
        assert counts == {("default", State.SUCCEEDED): 10, ("default", State.QUEUED): 45}
        rest = await backend.job_lease("w", ["default"], 100, 60.0)
        assert {j.id for j in rest} == {j.id for j in before[10:] + after}
        assert all(await backend.job_complete_many([(j.lease, None) for j in rest]))
        assert await backend.job_counts() == {("default", State.SUCCEEDED): 55}
        await _woken_by(backend, lambda: backend.job_enqueue_many([new_job("mail")]))
    finally:
        await backend.close()


# a worker whose connections are killed mid-run -----------------------------------


@pytest.mark.slow
async def test_worker_runs_every_job_exactly_once_through_killed_connections(url: str) -> None:
    app = App(url)
    runs: dict[str, int] = {}
    half = asyncio.Event()

    @app.task(name="tests.pg.count")
    async def count(ctx: JobContext) -> None:
        runs[ctx.job.id] = runs.get(ctx.job.id, 0) + 1
        if len(runs) >= 100:
            half.set()
        await asyncio.sleep(0.01)

    try:
        jobs = await count.enqueue_many_async([() for _ in range(200)])
        worker = Worker(app, ["default"], concurrency=10, burst=True,
                                      handle_signals=False, poll_interval=0.2,
                                      lease_seconds=3.0)  # fmt: skip
        run = asyncio.create_task(worker.run())
        await asyncio.wait_for(half.wait(), DEADLINE)
        assert await asyncio.to_thread(kill_connections, url) >= 1
        await asyncio.wait_for(run, 60.0)
        assert runs == {job.id: 1 for job in jobs}
        states = {(await app.get_job_async(job.id)).state for job in jobs}
        assert states == {State.SUCCEEDED}
    finally:
        await app.close_async()


async def test_the_listener_reads_each_notification_as_it_comes_and_wakes_all_after_a_ping(
    backend: PostgresBackend, url: str
) -> None:
    """The listener sleeps on its socket between notifications (psycopg's own
    wait woke ten times a second); a notification is still read at once, and a
    ping, whose answer may carry notifications psycopg keeps aside, wakes every
    waiter."""
    channel = f"offload_test_{uuid.uuid4().hex[:8]}"
    listener = Listener(backend._options.conninfo, channel, ping_every=1.0)
    try:
        async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
            for _ in range(3):  # each of several, not only the first
                waiter = asyncio.create_task(listener.wait(["mail"], 30.0))
                await asyncio.wait_for(listener.listening.wait(), DEADLINE)
                await asyncio.sleep(0)  # the waiter is registered
                await conn.execute("SELECT pg_notify(%s, 'mail')", (channel,))
                await asyncio.wait_for(waiter, 0.5)  # well before a ping could wake it
        other = asyncio.create_task(listener.wait(["sms"], 60.0))
        await asyncio.wait_for(other, 5.0)  # no notification: woken by a ping (every 1 s)
    finally:
        await listener.close()
