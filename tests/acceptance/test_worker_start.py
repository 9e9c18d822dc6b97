"""A worker started before its backend: it waits for it (``--broker-wait``),
stops on request while it waits, and fails at once when told to or in a
burst run. The real command in a subprocess, against a Redis server of the
test's own that starts after the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from tests.servers import free_port
from tests.servers.redis import start_server

APP = textwrap.dedent(
    """
    import os
    from offload import App

    app = App(os.environ["OFFLOAD_BACKEND_URL"])


    @app.task(name="start.add")
    def add(a: int, b: int) -> int:
        return a + b
    """
)


def _worker(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "startapp.py").write_text(APP)
    env = {**os.environ, "OFFLOAD_BACKEND_URL": f"redis://127.0.0.1:{port}/0?prefix=start"}
    return subprocess.Popen(
        [sys.executable, "-m", "offload.cli", "worker", "startapp:app", "--poll-interval", "0.1",
         *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} from the worker in {timeout}s:\n{seen}")


def _stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_a_worker_started_before_its_broker_waits_for_it_then_runs_jobs(tmp_path: Path) -> None:
    port = free_port()
    worker = _worker(tmp_path, port)
    server = None
    try:
        _wait_for_line(worker, "cannot reach the backend")
        assert worker.poll() is None
        server, _ = start_server(port=port)
        client = redis.Redis(port=port)
        # Enqueued by another process once the broker is up; the waiting worker runs it.
        enqueue = subprocess.run(
            [sys.executable, "-m", "offload.cli", "--app", "startapp:app", "enqueue", "start.add",
             "--args", "[2, 3]"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
            env={**os.environ, "OFFLOAD_BACKEND_URL": f"redis://127.0.0.1:{port}/0?prefix=start"},
        )  # fmt: skip
        job_id = enqueue.stdout.strip()
        deadline = time.monotonic() + 30
        while client.hget(f"{{start}}:job:{job_id}", "state") != b"succeeded":
            assert time.monotonic() < deadline, "the job did not succeed in 30 s"
            assert worker.poll() is None, worker.communicate()
            time.sleep(0.1)
        client.close()
        assert _stop(worker) == 0
    finally:
        _stop(worker)
        if server is not None:
            server.terminate()
            server.wait(10)


def test_a_stop_while_it_waits_ends_the_worker_cleanly(tmp_path: Path) -> None:
    worker = _worker(tmp_path, free_port())
    try:
        _wait_for_line(worker, "cannot reach the backend")
    finally:
        code = _stop(worker)
    assert code == 0


@pytest.mark.parametrize("args", [["--broker-wait", "0"], ["--burst"]])
def test_told_not_to_wait_or_in_a_burst_run_it_fails_at_once(
    tmp_path: Path, args: list[str]
) -> None:
    worker = _worker(tmp_path, free_port(), *args)
    try:
        _, err = worker.communicate(timeout=30)
    finally:
        _stop(worker)
    assert worker.returncode == 1, err
    assert "cannot reach the backend" not in err
    assert "127.0.0.1" in err
