"""Scenarios 6-8 and 10-12 of the fault catalogue: the broker restarted, crashed,
shut down at once, cut off, slowed, and a worker's clock skewed. Brokers here
are throwaway servers of the test's own (tests/faults/servers.py) or, for the
proxy and clock scenarios, the shared servers reached through a proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from offload import App, State
from offload.errors import BackendError, JobNotFoundError
from offload.testing import eventually, wait_for_job
from tests.faults.checker import check
from tests.faults.clock import skewed
from tests.faults.ledger import Ledger
from tests.faults.proxy import FaultProxy, through
from tests.faults.servers import AzuriteBroker, PgBroker, RedisBroker
from tests.faults.workers import Workers, enqueue

pytestmark = pytest.mark.slow


BROKERS = ["redis", "postgres", "azure"]


def _broker(name: str) -> RedisBroker | PgBroker | AzuriteBroker:
    if name == "redis":
        return RedisBroker(aof=True).start()
    if name == "postgres":
        return PgBroker()
    return AzuriteBroker(in_memory=False).start()


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[RedisBroker | PgBroker | AzuriteBroker]:
    made = _broker(request.param)
    yield made
    made.destroy()


@pytest.fixture
async def setup(
    broker: RedisBroker | PgBroker | AzuriteBroker, ledger: Ledger, tmp_path: Path
) -> AsyncIterator[tuple[App, Workers]]:
    url = broker.url()
    app = App(url)
    spawned = Workers(url, ledger, tmp_path)
    yield app, spawned
    spawned.close()
    await app.close_async()


async def _enqueue_through(app: App, count: int, ledger: Ledger) -> list[str]:
    """Enqueue during an outage: each call either returns (accepted) or raises a
    clear BackendError; it is retried until accepted, never silently lost."""
    ids: list[str] = []
    while len(ids) < count:
        try:
            ids += await enqueue(app, "f.record", 1)
        except BackendError as exc:
            ledger.fault("enqueue_refused", error=str(exc)[:200])
            await asyncio.sleep(0.2)
    return ids


async def test_s06_broker_restart(
    broker: RedisBroker | PgBroker | AzuriteBroker, setup: tuple[App, Workers], ledger: Ledger
) -> None:
    app, workers = setup
    before = await enqueue(app, "f.record", 20)
    workers.run(2, FAULT_WORK="0.05")
    await eventually(lambda: _some_ran(ledger), timeout=30)
    broker.restart()
    after = await _enqueue_through(app, 20, ledger)
    assert await check(app, ledger, before + after, timeout=90) == []


async def _some_ran(ledger: Ledger) -> bool:
    return len(ledger.executions()) > 0


@pytest.mark.parametrize("broker", ["redis", "postgres"], indirect=True)
async def test_s07_broker_crash_keeps_acknowledged_jobs_with_aof(
    broker: RedisBroker | PgBroker, setup: tuple[App, Workers], ledger: Ledger
) -> None:
    """Redis with ``appendfsync always`` and PostgreSQL: an enqueue that
    returned survives a kill -9 of the server right after it."""
    app, workers = setup
    accepted = await enqueue(app, "f.record", 50)
    if isinstance(broker, PgBroker):
        broker.crash()
    else:
        broker.kill()
        broker.start()
    workers.run(2)
    assert await check(app, ledger, accepted, timeout=90) == []


@pytest.mark.parametrize("in_memory", [False, True], ids=["on-disk", "in-memory"])
async def test_s07_azurite_crash_keeps_serving(
    in_memory: bool, ledger: Ledger, tmp_path: Path
) -> None:
    """Azurite saves its on-disk state every few seconds, so a kill -9 loses the
    writes since (in memory: everything, tables and queues included); the
    emulator's limit, docs/backends/azure.md. What offload promises there: the
    workers and the client that outlive the crash create what is missing and
    carry on (no crash loop), and every job that survived runs to its end
    (I1-I4). In memory, the loss of the tables is certain, so the re-creation
    is exercised on every run."""
    broker = AzuriteBroker(in_memory=in_memory).start()
    url = broker.url()
    app = App(url)
    workers = Workers(url, ledger, tmp_path)
    try:
        before = await enqueue(app, "f.record", 20)
        workers.run(2, FAULT_WORK="0.05")
        await eventually(lambda: _some_ran(ledger), timeout=30)
        broker.kill()
        ledger.fault("broker_crash")
        broker.start()
        after = await _enqueue_through(app, 20, ledger)
        survived = [job_id for job_id in before if await _stored(app, job_id)]
        ledger.fault("lost_in_crash", count=len(before) - len(survived))
        if in_memory:
            assert survived == []
        assert await check(app, ledger, survived + after, timeout=90) == []
    finally:
        workers.close()
        await app.close_async()
        broker.destroy()


async def _stored(app: App, job_id: str) -> bool:
    try:
        await app.get_job_async(job_id)
    except JobNotFoundError:
        return False
    return True


async def test_s07_broker_crash_without_aof_loses_acknowledged_jobs(tmp_path: Path) -> None:
    """The documented limit (docs/backends/redis.md): without AOF a kill -9 of
    Redis loses what it acknowledged since its last snapshot, here everything."""
    server = RedisBroker(aof=False).start()
    try:
        app = App(server.url())
        ids = await enqueue(app, "f.record", 10)
        server.kill()
        server.start()
        with pytest.raises(JobNotFoundError):
            await app.get_job_async(ids[0])
        await app.close_async()
    finally:
        server.destroy()


@pytest.mark.parametrize("broker", ["postgres"], indirect=True)
async def test_s08_postgres_immediate_shutdown(
    broker: PgBroker, setup: tuple[App, Workers], ledger: Ledger, tmp_path: Path
) -> None:
    """Down past a lease: the worker gives its run up before the lease could
    lapse (the self-fence), and recovery redelivers the job once the server is
    back, so the two runs follow each other (I2)."""
    app, workers = setup
    committed = await enqueue(app, "f.record", 30)
    [running] = await enqueue(app, "f.hang_once", 1)
    workers.run(2, FAULT_WORK="0.05")
    await eventually(lambda: _exists(tmp_path / f"{running}.1"), timeout=30)
    broker.kill()
    ledger.fault("broker_down")
    await eventually(lambda: _given_up(ledger, running), timeout=30)  # while it is down
    broker.start()
    done = await wait_for_job(app, running, timeout=90)
    assert (done.state, done.attempts) == (State.SUCCEEDED, 2)  # redelivered after its lease
    assert await check(app, ledger, [*committed, running], timeout=90) == []


async def _exists(path: Path) -> bool:
    return path.exists()


async def _given_up(ledger: Ledger, job_id: str) -> bool:
    return any(r.job_id == job_id and r.outcome == "abandoned" for r in ledger.executions())


def _shared_url(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    from tests.conftest import BACKENDS

    return BACKENDS[name](tmp_path, request)


@pytest.fixture(params=["redis", "postgres"])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FaultProxy]]:
    """A shared-server URL and a proxy in front of it (the proxy alone is cut)."""
    url = _shared_url(request.param, request, tmp_path)
    target = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1].split("?")[0])
    with FaultProxy(target) as proxy:
        yield url, proxy


async def test_s10_network_cut_mid_job(
    proxied: tuple[str, FaultProxy], ledger: Ledger, tmp_path: Path
) -> None:
    url, proxy = proxied
    app = App(url)
    cut_off = Workers(through(url, proxy.port), ledger, tmp_path / "cut")
    healthy = Workers(url, ledger, tmp_path)
    try:
        [job_id] = await enqueue(app, "f.hang_once", 1)
        [far] = cut_off.run()
        await eventually(lambda: _exists(tmp_path / "cut" / f"{job_id}.1"), timeout=30)
        proxy.blackhole()
        ledger.fault("cut", pid=far.pid)
        healthy.run()
        done = await wait_for_job(app, job_id, timeout=60)
        assert (done.state, done.attempts) == (State.SUCCEEDED, 2)  # the lease lapsed
        # Cut off, the worker gave its run up before the lease lapsed (self-fence):
        # no overlap, and the I2 check leaves no run out.
        assert await _abandoned(ledger, job_id, far.pid)
        proxy.forward()  # healed: it records nothing for the run it gave up
        after = await app.get_job_async(job_id)
        assert (after.state, after.attempts, after.result) == (State.SUCCEEDED, 2, done.result)
        assert await check(app, ledger, [job_id]) == []
    finally:
        cut_off.close()
        healthy.close()
        await app.close_async()


async def _abandoned(ledger: Ledger, job_id: str, pid: int) -> bool:
    return any(r.job_id == job_id and r.pid == pid and r.outcome == "abandoned"
               for r in ledger.executions())  # fmt: skip


async def test_s11_slow_broker(
    proxied: tuple[str, FaultProxy], ledger: Ledger, tmp_path: Path
) -> None:
    """Slowed to 0.3 s a chunk: a retried enqueue with a unique key makes no
    duplicate, and the job runs to its end. A completion slowed past the lease
    is refused and the job runs again, as at-least-once delivery allows; every
    run of it is its own attempt, one after the other (I2)."""
    url, proxy = proxied
    slow = App(through(url, proxy.port))
    app = App(url)
    workers = Workers(through(url, proxy.port), ledger, tmp_path, lease=3.0)
    from tests.faults.tasks import register

    register(slow, ledger)
    try:
        proxy.slow(0.3)
        record = slow.get_task("f.record")
        first = await record.options(unique_key="s11").enqueue_async()
        retried = await record.options(unique_key="s11").enqueue_async()  # the caller retries
        assert (retried.id, retried.duplicate) == (first.id, True)
        workers.run()
        assert await check(app, ledger, [first.id], serving_task=None, timeout=90) == []
        attempts = [r.attempt for r in ledger.executions() if r.job_id == first.id]
        assert attempts == sorted(set(attempts))  # no attempt ran twice
    finally:
        proxy.forward()
        workers.close()
        await slow.close_async()
        await app.close_async()


@pytest.mark.parametrize("name", ["postgres", "redis"])
async def test_s12_a_worker_ahead_of_the_broker_clock_runs_nothing_early(
    name: str, request: pytest.FixtureRequest, ledger: Ledger, tmp_path: Path
) -> None:
    url = _shared_url(name, request, tmp_path)
    app = App(url)
    ahead = Workers(url, ledger, tmp_path)
    try:
        [job_id] = await enqueue(app, "f.record", 1, delay=4.0)
        ahead.start(1, prefix=skewed("+10m"))
        ahead.release(1)
        [now_job] = await enqueue(app, "f.record", 1)
        await wait_for_job(app, now_job, timeout=30)  # it is serving, 10 min ahead
        assert (await app.get_job_async(job_id)).state is State.SCHEDULED  # not early
        done = await wait_for_job(app, job_id, timeout=30)
        run = next(r for r in ledger.executions() if r.job_id == job_id)
        assert done.state is State.SUCCEEDED
        assert run.start - 600 >= done.created_at.timestamp() + 4.0 - 0.5
    finally:
        ahead.close()
        await app.close_async()


@pytest.mark.parametrize("name", ["sqlite", "azure"])
async def test_s12_without_a_broker_clock_processes_must_share_one(
    name: str, request: pytest.FixtureRequest, ledger: Ledger, tmp_path: Path
) -> None:
    """SQLite and Azure Storage have no server clock a lease or a due time can
    follow: a worker 10 min ahead runs a delayed job at once. The backends'
    docs (docs/backends/sqlite.md, azure.md) say their processes must share one
    clock."""
    url = _shared_url(name, request, tmp_path)
    app = App(url)
    ahead = Workers(url, ledger, tmp_path)
    try:
        [job_id] = await enqueue(app, "f.record", 1, delay=300.0)
        ahead.start(1, prefix=skewed("+10m"))
        ahead.release(1)
        done = await wait_for_job(app, job_id, timeout=30)
        assert done.state is State.SUCCEEDED  # five minutes early, as documented
    finally:
        ahead.close()
        await app.close_async()
