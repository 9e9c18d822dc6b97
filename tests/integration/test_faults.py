"""A real worker process killed or stopped mid-job, on every durable backend:
nothing accepted is lost, an interrupted job resumes from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from uuid_utils import uuid7

from offload import App, EventKind, NewJob, State
from offload.testing import eventually, wait_for_job

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import asyncio, os, pathlib, sys
    from offload import App, JobContext
    from offload.worker import Worker

    app = App(os.environ["OFFLOAD_BACKEND_URL"])
    marks = pathlib.Path(os.environ["MARKS"])

    @app.task(name="fault.hang_once")
    async def hang_once(ctx: JobContext) -> str:
        (marks / f"{ctx.job.id}.{ctx.attempt}").touch()
        if ctx.attempt == 1:
            await asyncio.Event().wait()
        return "second time lucky"

    @app.task(name="fault.short")
    async def short(ctx: JobContext) -> str:
        (marks / f"{ctx.job.id}.{ctx.attempt}").touch()
        await asyncio.sleep(0.5)
        return "finished in grace"

    @app.task(name="fault.resumable")
    async def resumable(ctx: JobContext) -> int:
        if ctx.checkpoint is None:
            await ctx.save_async({"step": 5})
            (marks / f"{ctx.job.id}.{ctx.attempt}").touch()
            await asyncio.Event().wait()
        return int(ctx.checkpoint["step"])

    burst = "--burst" in sys.argv
    asyncio.run(Worker(app, burst=burst, poll_interval=0.1, lease_seconds=1.0,
                       grace_period=float(os.environ.get("GRACE", "5"))).run())
    """
)


@pytest.fixture
def spawn(tmp_path: Path, durable_backend_url: str) -> Iterator[object]:
    script = tmp_path / "fault_worker.py"
    script.write_text(WORKER)
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, grace: float = 5.0) -> subprocess.Popen[bytes]:
        env = os.environ | {
            "OFFLOAD_BACKEND_URL": durable_backend_url,
            "OFFLOAD_RECOVER_INTERVAL": "0.2",
            "MARKS": str(tmp_path),
            "GRACE": str(grace),
        }
        proc = subprocess.Popen([sys.executable, str(script), *args], env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def _enqueue(app: App, task: str) -> str:
    [job] = await (await app.backend()).job_enqueue_many([NewJob(str(uuid7()), task, b"{}")])
    return job.id


async def _marked(path: Path) -> bool:
    return path.exists()


async def test_kill_9_mid_job_is_redelivered_and_succeeds(
    spawn: object, durable_backend_url: str, tmp_path: Path
) -> None:
    app = App(durable_backend_url)
    job_id = await _enqueue(app, "fault.hang_once")
    first = spawn()  # type: ignore[operator]
    await eventually(lambda: _marked(tmp_path / f"{job_id}.1"), timeout=20)
    first.kill()  # SIGKILL: no cleanup, the lease is simply abandoned
    first.wait(10)
    assert (await app.get_job_async(job_id)).state is State.RUNNING
    second = spawn()  # type: ignore[operator]
    done = await wait_for_job(app, job_id, timeout=30)
    assert (done.state, done.attempts, done.result) == (State.SUCCEEDED, 2, "second time lucky")
    kinds = [e.kind for e in await app.events_async(job_id)]
    assert EventKind.LEASE_EXPIRED in kinds
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    await app.close_async()


async def test_sigterm_lets_a_running_job_finish_within_grace(
    spawn: object, durable_backend_url: str, tmp_path: Path
) -> None:
    app = App(durable_backend_url)
    job_id = await _enqueue(app, "fault.short")
    proc = spawn(grace=10.0)  # type: ignore[operator]
    await eventually(lambda: _marked(tmp_path / f"{job_id}.1"), timeout=20)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    done = await app.get_job_async(job_id)
    assert (done.state, done.result) == (State.SUCCEEDED, "finished in grace")
    await app.close_async()


async def test_sigterm_past_grace_requeues_with_checkpoint_then_resumes(
    spawn: object, durable_backend_url: str, tmp_path: Path
) -> None:
    app = App(durable_backend_url)
    job_id = await _enqueue(app, "fault.resumable")
    proc = spawn(grace=0.3)  # type: ignore[operator]
    await eventually(lambda: _marked(tmp_path / f"{job_id}.1"), timeout=20)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    back = await app.get_job_async(job_id)
    assert (back.state, back.attempts, back.checkpoint) == (State.QUEUED, 0, {"step": 5})
    resumed = spawn("--burst")  # type: ignore[operator]
    assert resumed.wait(30) == 0
    done = await app.get_job_async(job_id)
    assert (done.state, done.result, done.attempts) == (State.SUCCEEDED, 5, 1)
    kinds = [e.kind for e in await app.events_async(job_id)]
    assert EventKind.REQUEUED in kinds
    await app.close_async()
