"""Scenarios 1-5 and 17 of the fault catalogue: worker processes killed, crashed,
stopped, frozen past their lease and racing, on every durable backend (memory
lives in one process, so a worker process cannot share it)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from offload import App, EventKind, State
from offload.errors import BackendError
from offload.testing import eventually, wait_for_job
from tests.faults.checker import check
from tests.faults.ledger import Ledger
from tests.faults.workers import Workers, enqueue, sqlite_locked

pytestmark = pytest.mark.slow


async def _marked(path: Path) -> bool:
    return path.exists()


async def _running(app: App, job_id: str, folder: Path, attempt: int = 1) -> None:
    await eventually(lambda: _marked(folder / f"{job_id}.{attempt}"), timeout=30)


async def test_s01_kill_9_mid_job(
    workers: Workers, client: App, ledger: Ledger, tmp_path: Path
) -> None:
    [job_id] = await enqueue(client, "f.hang_once", 1)
    [first] = workers.run()
    await _running(client, job_id, tmp_path)
    workers.kill(first)  # SIGKILL: no cleanup, the lease is simply abandoned
    assert (await client.get_job_async(job_id)).state is State.RUNNING
    workers.run()
    done = await wait_for_job(client, job_id, timeout=30)
    assert (done.state, done.attempts, done.result) == (State.SUCCEEDED, 2, "second time lucky")
    assert EventKind.LEASE_EXPIRED in [e.kind for e in await client.events_async(job_id)]
    assert await check(client, ledger, [job_id]) == []


async def test_s01_kill_9_after_a_cancel_request_ends_cancelled(
    workers: Workers, client: App, ledger: Ledger, tmp_path: Path
) -> None:
    """The cancel asked while it ran is honoured when its worker dies before
    confirming: the job ends cancelled instead of running again."""
    [job_id] = await enqueue(client, "f.hang_once", 1)
    [first] = workers.run()
    await _running(client, job_id, tmp_path)
    await _cancel_while_frozen(client, job_id, first)
    workers.kill(first)
    workers.run()
    done = await wait_for_job(client, job_id, timeout=30)
    assert done.state is State.CANCELLED
    assert not (tmp_path / f"{job_id}.2").exists()
    assert await check(client, ledger, [job_id], allowed=[State.CANCELLED]) == []


async def _cancel_while_frozen(client: App, job_id: str, proc: subprocess.Popen[bytes]) -> None:
    """Ask the cancel while ``proc`` is stopped, so it cannot confirm it. A stop
    that lands inside one of its SQLite write transactions (a heartbeat) keeps
    the file locked and the cancel fails: let it finish that write, stop it
    again and ask again. The cancel is only ever stored while it is stopped."""
    for _ in range(5):
        proc.send_signal(signal.SIGSTOP)
        try:
            await client.cancel_async(job_id)
            return
        except BackendError as exc:
            if "locked" not in str(exc):
                raise
            proc.send_signal(signal.SIGCONT)
            # Stopped again at once, it would still be inside the same write:
            # wait (up to a second) for that write to end before the next try.
            sqlite_locked(client.backend_url)
    pytest.fail("the cancel never found the file unlocked while the worker was stopped")


async def test_s02_crash_after_return_before_completion_is_stored(
    workers: Workers, client: App, ledger: Ledger
) -> None:
    [job_id] = await enqueue(client, "f.crash_after", 1)
    [first] = workers.run()
    assert first.wait(30) == 3  # died in the hook, before the recorder stored anything
    workers.run()
    done = await wait_for_job(client, job_id, timeout=30)
    assert (done.state, done.attempts, done.result) == (State.SUCCEEDED, 2, 2)
    outcomes = [(r.attempt, r.outcome) for r in ledger.executions() if r.job_id == job_id]
    assert outcomes == [(1, "ok"), (2, "ok")]  # ran again, one after the other
    assert await check(client, ledger, [job_id]) == []


async def test_s03_sigterm_lets_a_running_job_finish_within_grace(
    workers: Workers, client: App, ledger: Ledger, tmp_path: Path
) -> None:
    [job_id] = await enqueue(client, "f.short", 1)
    workers.grace = 10.0
    [proc] = workers.run()
    await _running(client, job_id, tmp_path)
    assert workers.terminate(proc) == 0
    done = await client.get_job_async(job_id)
    assert (done.state, done.result) == (State.SUCCEEDED, "finished in grace")


async def test_s03_sigterm_past_grace_requeues_with_checkpoint_then_resumes(
    workers: Workers, client: App, ledger: Ledger, tmp_path: Path
) -> None:
    [job_id] = await enqueue(client, "f.resumable", 1)
    workers.grace = 0.3
    [proc] = workers.run()
    await _running(client, job_id, tmp_path)
    assert workers.terminate(proc) == 0
    back = await client.get_job_async(job_id)
    assert (back.state, back.attempts, back.checkpoint) == (State.QUEUED, 0, {"step": 5})
    [resumed] = workers.run(1, "--burst")
    assert resumed.wait(30) == 0
    done = await client.get_job_async(job_id)
    assert (done.state, done.result, done.attempts) == (State.SUCCEEDED, 5, 1)
    assert EventKind.REQUEUED in [e.kind for e in await client.events_async(job_id)]


async def test_s04_lease_lost_while_frozen_is_fenced(
    workers: Workers, client: App, ledger: Ledger, tmp_path: Path
) -> None:
    [job_id] = await enqueue(client, "f.hang_once", 1)
    [frozen] = workers.run()
    await _running(client, job_id, tmp_path)
    workers.stop(frozen)  # a GC pause or a frozen host, past its 1 s lease
    workers.run()
    done = await wait_for_job(client, job_id, timeout=30)
    assert (done.state, done.attempts) == (State.SUCCEEDED, 2)
    workers.resume(frozen)
    # Thawed, its heartbeat learns the lease is gone and abandons the run; the
    # job keeps the second run's outcome.
    await eventually(lambda: _abandoned(ledger, job_id, frozen.pid), timeout=30)
    again = await client.get_job_async(job_id)
    assert (again.state, again.attempts, again.result) == (State.SUCCEEDED, 2, "second time lucky")
    assert await check(client, ledger, [job_id], fenced=[frozen.pid]) == []


async def _abandoned(ledger: Ledger, job_id: str, pid: int) -> bool:
    return any(r.job_id == job_id and r.pid == pid and r.outcome == "abandoned"
               for r in ledger.executions())  # fmt: skip


@pytest.mark.timeout(300)
async def test_s05_many_workers_racing(workers: Workers, client: App, ledger: Ledger) -> None:
    # Azurite serves every call from one Node.js process: fewer jobs keep it short.
    default = "100" if workers.url.startswith("azure") else "400"
    count = int(os.environ.get("FAULT_S05_JOBS", default))
    job_ids = await enqueue(client, "f.record", count)
    workers.lease = 5.0
    workers.start(8, FAULT_WORK="0")
    workers.release(8)
    assert await check(client, ledger, job_ids, timeout=120) == []
    wanted = set(job_ids)
    runs = [r for r in ledger.executions() if r.job_id in wanted]
    if workers.url.startswith("azure"):
        # Known limit (docs/reliability.md, "Findings"): on an overloaded
        # Azurite some leases still lapse before their renewal lands, and jobs
        # run again, one run after the other (I2 held above).
        assert len(runs) >= count
    else:
        assert len(runs) == count  # no redelivery without a fault: each leased once
    assert len({r.pid for r in runs}) > 1


async def test_s17_poison_job_killing_its_worker(
    workers: Workers, client: App, ledger: Ledger
) -> None:
    [job_id] = await enqueue(client, "f.poison", 1, max_attempts=2)
    [good] = await enqueue(client, "f.record", 1)
    # A supervisor restarts a worker that dies; here the test does.
    for _ in range(3):
        [proc] = workers.run(1, "--burst")
        proc.wait(60)
        if (await client.get_job_async(job_id)).state.ended:
            break
    workers.run()
    dead = await wait_for_job(client, job_id, timeout=30)
    assert (dead.state, dead.attempts) == (State.DEAD, 2)
    assert sum(1 for r in ledger.executions() if r.job_id == job_id) == 2
    assert await check(client, ledger, [job_id, good]) == []
