"""A worker killed with SIGKILL after a parent's end was written but before its
dependent was released: another worker's sweep releases the dependent, once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import App, EventKind, State, chain
from offload.testing import eventually, wait_for_job

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import asyncio, os, pathlib, signal
    from offload import App, JobContext
    from offload.worker import Worker
    import offload.batch, offload.dependencies

    app = App(os.environ["OFFLOAD_BACKEND_URL"])
    marks = pathlib.Path(os.environ["MARKS"])

    @app.task(name="flow.step")
    async def step(name: str, ctx: JobContext) -> str:
        (marks / f"{name}.{ctx.job.id}.{ctx.attempt}").touch()
        return name

    if os.environ.get("DIE_BEFORE_RELEASE"):
        # Once the parent's outcome is written, die where the release would be.
        async def die(backend, batch_id):
            jobs = await offload.dependencies.batch_jobs(backend, batch_id)
            if any(j.ended for j in jobs):
                os.kill(os.getpid(), signal.SIGKILL)
            return 0
        offload.batch.advance = die

    asyncio.run(Worker(app, poll_interval=0.1, lease_seconds=2.0).run())
    """
)


@pytest.fixture
def spawn(tmp_path: Path, durable_backend_url: str) -> Iterator[object]:
    script = tmp_path / "flow_worker.py"
    script.write_text(WORKER)
    procs: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> subprocess.Popen[bytes]:
        full = (
            os.environ
            | env
            | {
                "OFFLOAD_BACKEND_URL": durable_backend_url,
                "OFFLOAD_BATCH_SWEEP_INTERVAL": "0.3",
                "MARKS": str(tmp_path),
            }
        )
        proc = subprocess.Popen([sys.executable, str(script)], env=full)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_kill_9_between_a_parent_end_and_the_release_releases_once(
    spawn: object, durable_backend_url: str, tmp_path: Path
) -> None:
    app = App(durable_backend_url)

    @app.task(name="flow.step")
    async def step(name: str) -> str:
        return name

    flow = await app.workflow_async(chain(step.prepare("A"), step.prepare("B")))
    a, b = flow.jobs.values()
    doomed = spawn(DIE_BEFORE_RELEASE="1")  # type: ignore[operator]
    assert doomed.wait(30) == -9
    assert (await app.get_job_async(a.id)).state is State.SUCCEEDED
    assert (await app.get_job_async(b.id)).state is State.SCHEDULED
    spawn(), spawn()  # type: ignore[operator]
    done = await wait_for_job(app, b.id, timeout=30)
    assert (done.state, done.result) == (State.SUCCEEDED, "B")
    kinds = [e.kind for e in await app.events_async(b.id)]
    assert kinds.count(EventKind.RELEASED) == 1
    assert kinds.count(EventKind.STARTED) == 1
    await eventually(lambda: _ran_once(tmp_path, b.id), timeout=10)
    await app.close_async()


async def _ran_once(marks: Path, job_id: str) -> bool:
    return [p.name for p in marks.glob(f"B.{job_id}.*")] == [f"B.{job_id}.1"]
