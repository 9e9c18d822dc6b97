"""Scenarios 6-8 and 10-12 of the fault catalogue: the broker restarted, crashed,
shut down at once, cut off, slowed, and a worker's clock skewed. Brokers here
are throwaway servers of the test's own (tests/faults/servers.py) or, for the
proxy and clock scenarios, the shared servers reached through a proxy (Azurite
and Redis Cluster: throwaway ones, behind one proxy per endpoint or node)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from offload import App, State
from offload.errors import BackendError, JobNotFoundError
from offload.testing import eventually, wait_for_job
from tests.faults.checker import check
from tests.faults.clock import skewed
from tests.faults.ledger import Ledger
from tests.faults.proxy import FaultProxy, through
from tests.faults.servers import AzuriteBroker, PgBroker, ProxiedCluster, RedisBroker
from tests.faults.workers import Workers, enqueue
from tests.servers.azurite import ENV, connection_string

pytestmark = pytest.mark.slow


BROKERS = ["redis", "postgres", "azure", "redis_cluster"]
Broker = RedisBroker | PgBroker | AzuriteBroker | ProxiedCluster
# The slow broker that must not make a worker give its run up: a Redis renewal
# takes 1.8 s (one chunk each way, 0.9 s each), 0.3 of the lease, so the
# interval plus one call fits the self-fence's window (0.8 of the lease) and
# two calls plus the interval miss it even by the fence's own check interval
# (a tenth of the lease). PostgreSQL makes two round trips a renewal, Azure
# several calls a lease (queue, tables): their chunks are slowed less, the
# promise is the same. On the cluster, three proxies and a loaded machine left
# too little of the window at 0.9 s (a run given up at load 8): there it shows
# the promise holds, and plain Redis shows what the pacing changed.
# A lease long enough that a renewal on a fresh pooled connection (its handshake
# through the slowed proxy included) is answered well inside the fence's window
# even on a loaded machine: at 6 s and 0.5 s a chunk, CI saw a run given up.
SLOW_LEASE = 8.0
SLOW_CHUNK = 0.25


def _broker(name: str) -> Broker:
    if name == "redis":
        return RedisBroker(aof=True).start()
    if name == "postgres":
        return PgBroker()
    if name == "redis_cluster":  # every node restarted on its port and data
        return ProxiedCluster().start()
    return AzuriteBroker(in_memory=False).start()


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    made = _broker(request.param)
    yield made
    made.destroy()


@pytest.fixture
async def setup(
    broker: Broker, ledger: Ledger, tmp_path: Path
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
    broker: Broker, setup: tuple[App, Workers], ledger: Ledger
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


@dataclass
class Proxied:
    """A broker reached directly by the test (``url``) and through proxies by
    the workers under test (``worker_url`` with ``worker_env``); every proxy in
    front of it is cut, slowed or healed together."""

    name: str
    url: str
    worker_url: str
    proxies: list[FaultProxy]
    worker_env: dict[str, str] = field(default_factory=dict)
    # No way round the proxies: what the workers under test see, all see.
    single_path: bool = False

    def cut(self) -> None:
        for proxy in self.proxies:
            proxy.blackhole()

    def slow(self, seconds: float) -> None:
        for proxy in self.proxies:
            proxy.slow(seconds)

    def heal(self) -> None:
        for proxy in self.proxies:
            proxy.forward()

    def workers(self, ledger: Ledger, folder: Path, **options: float) -> Workers:
        return Workers(self.worker_url, ledger, folder, env=dict(self.worker_env), **options)

    def app_through(self) -> App:
        """An App in this process that talks through the proxies. Azure reads its
        connection string from the environment when the App is made."""
        if ENV not in self.worker_env:
            return App(self.worker_url)
        direct = os.environ[ENV]
        os.environ[ENV] = self.worker_env[ENV]
        try:
            return App(self.worker_url)
        finally:
            os.environ[ENV] = direct


@pytest.fixture(params=["redis", "postgres", "azure", "redis_cluster"])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Proxied]:
    """A broker and proxies in front of it (the proxies alone are cut): the
    shared Redis and PostgreSQL behind one, a throwaway Azurite behind two, one
    for each service offload uses (Queue and Table), a throwaway Redis Cluster
    behind one per node. A cluster announces its proxies, so there every
    client, the test's own too, goes through them (``single_path``)."""
    if request.param == "azure":
        yield from _proxied_azurite()
        return
    if request.param == "redis_cluster":
        cluster = ProxiedCluster().start()
        try:
            url = cluster.url()
            yield Proxied("redis_cluster", url, url, cluster.proxies, single_path=True)
        finally:
            cluster.destroy()
        return
    url = _shared_url(request.param, request, tmp_path)
    target = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1].split("?")[0])
    with FaultProxy(target) as proxy:
        yield Proxied(request.param, url, through(url, proxy.port), [proxy])


def _proxied_azurite() -> Iterator[Proxied]:
    broker = AzuriteBroker(in_memory=True).start()
    try:
        with FaultProxy(broker.queue_port) as queues, FaultProxy(broker.table_port) as tables:
            url = broker.url()  # the direct connection string, in the environment
            via = {ENV: connection_string(queues.port, tables.port)}
            yield Proxied("azure", url, url, [queues, tables], via)
    finally:
        broker.destroy()


@pytest.mark.parametrize("proxied", ["redis", "postgres", "azure"], indirect=True)
async def test_s10_network_cut_mid_job(proxied: Proxied, ledger: Ledger, tmp_path: Path) -> None:
    app = App(proxied.url)
    cut_off = proxied.workers(ledger, tmp_path / "cut")
    healthy = Workers(proxied.url, ledger, tmp_path)
    try:
        [job_id] = await enqueue(app, "f.hang_once", 1)
        [far] = cut_off.run()
        await eventually(lambda: _exists(tmp_path / "cut" / f"{job_id}.1"), timeout=30)
        proxied.cut()
        ledger.fault("cut", pid=far.pid)
        healthy.run()
        done = await wait_for_job(app, job_id, timeout=60)
        assert (done.state, done.attempts) == (State.SUCCEEDED, 2)  # the lease lapsed
        # Cut off, the worker gave its run up before the lease lapsed (self-fence):
        # no overlap, and the I2 check leaves no run out.
        assert await _abandoned(ledger, job_id, far.pid)
        proxied.heal()  # healed: it records nothing for the run it gave up
        after = await app.get_job_async(job_id)
        assert (after.state, after.attempts, after.result) == (State.SUCCEEDED, 2, done.result)
        assert await check(app, ledger, [job_id]) == []
    finally:
        cut_off.close()
        healthy.close()
        await app.close_async()


@pytest.mark.parametrize("proxied", ["redis_cluster"], indirect=True)
async def test_s10_network_cut_mid_job_on_a_cluster(
    proxied: Proxied, ledger: Ledger, tmp_path: Path
) -> None:
    """Every node's proxy cut: no client reaches the cluster, so no healthy
    worker can take the job over during the cut. What must hold: the cut-off
    worker gives its run up before its lease could lapse, and once healed the
    job is redelivered, runs once more and succeeds, never two runs at once."""
    app = App(proxied.url)
    workers = proxied.workers(ledger, tmp_path)
    try:
        [job_id] = await enqueue(app, "f.hang_once", 1)
        [far] = workers.run()
        await eventually(lambda: _exists(tmp_path / f"{job_id}.1"), timeout=30)
        proxied.cut()
        ledger.fault("cut", pid=far.pid)
        await eventually(lambda: _abandoned(ledger, job_id, far.pid), timeout=30)
        proxied.heal()
        done = await wait_for_job(app, job_id, timeout=60)
        assert (done.state, done.attempts) == (State.SUCCEEDED, 2)
        runs = [(r.attempt, r.outcome) for r in ledger.executions() if r.job_id == job_id]
        assert runs == [(1, "abandoned"), (2, "ok")]
        assert await check(app, ledger, [job_id]) == []
    finally:
        workers.close()
        await app.close_async()


async def _started(ledger: Ledger, job_id: str) -> bool:
    return any(r.job_id == job_id for r in ledger.executions())


async def _abandoned(ledger: Ledger, job_id: str, pid: int) -> bool:
    return any(r.job_id == job_id and r.pid == pid and r.outcome == "abandoned"
               for r in ledger.executions())  # fmt: skip


async def test_s11_slow_broker(proxied: Proxied, ledger: Ledger, tmp_path: Path) -> None:
    """Slowed to 0.3 s a chunk: a retried enqueue with a unique key makes no
    duplicate, and the job runs to its end. A completion slowed past the lease
    would be refused and the job run again, as at-least-once delivery allows;
    every run of it is its own attempt, one after the other (I2)."""
    slow = proxied.app_through()
    app = App(proxied.url)
    workers = proxied.workers(ledger, tmp_path, lease=3.0)
    from tests.faults.tasks import register

    register(slow, ledger)
    try:
        # Connected and warm before the broker slows (as in s10 and the keep-run
        # case): what is slowed is their work, not minutes of first handshakes.
        workers.run()
        [warm] = await enqueue(app, "f.record", 1)
        await wait_for_job(app, warm, timeout=60)
        record = slow.get_task("f.record")
        await record.options(unique_key="s11-warm").enqueue_async()  # the producer's too
        proxied.slow(0.3)
        # Due in a few seconds, so the running workers cannot end it (and free
        # its key) before the retry arrives.
        first = await record.options(unique_key="s11", delay=5.0).enqueue_async()
        retried = await record.options(unique_key="s11", delay=5.0).enqueue_async()  # a retry
        assert (retried.id, retried.duplicate) == (first.id, True)
        assert await check(app, ledger, [first.id], serving_task=None, timeout=90) == []
        attempts = [r.attempt for r in ledger.executions() if r.job_id == first.id]
        assert attempts == sorted(set(attempts))  # no attempt ran twice
    finally:
        proxied.heal()
        workers.close()
        await slow.close_async()
        await app.close_async()


@pytest.mark.parametrize("proxied", ["redis"], indirect=True)
async def test_s11_a_slow_broker_that_answers_keeps_the_run(
    proxied: Proxied, ledger: Ledger, tmp_path: Path
) -> None:
    """Every call slowed (``SLOW_CHUNK`` each way, half a second a round trip,
    and more for a pooled connection's handshake) but each answered within the
    lease: the worker keeps its run for a lease and a half, and it runs once; s10 shows
    that a broker that does not answer still makes the worker give its run up.
    How the renewals are paced under a slow broker is shown without a proxy's
    timing in ``tests/unit/test_heartbeat_pacing.py``; one backend is enough
    here, since the pacing is the worker's, not the backend's."""
    app = App(proxied.url)
    workers = proxied.workers(ledger, tmp_path, lease=SLOW_LEASE)
    try:
        [job_id] = await enqueue(app, "f.record", 1)
        [near] = workers.run(FAULT_WORK=str(1.5 * SLOW_LEASE))
        await eventually(lambda: _started(ledger, job_id), timeout=30)
        # Slowed mid-job, as s10 cuts mid-job: the worker's connections are
        # open, so what is measured is its renewals, not its first handshakes.
        proxied.slow(SLOW_CHUNK)
        ledger.fault("slow", pid=near.pid)
        done = await wait_for_job(app, job_id, timeout=60)
        runs = [(r.pid, r.attempt, r.outcome) for r in ledger.executions() if r.job_id == job_id]
        assert runs == [(near.pid, 1, "ok")]  # not given up, not run again
        assert (done.state, done.attempts) == (State.SUCCEEDED, 1)
    finally:
        proxied.heal()
        workers.close()
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
