"""Worker processes for the fault scenarios: started together on a barrier,
killed, stopped and resumed with each fault written to the ledger first."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from uuid_utils import uuid7

from offload import App, NewJob
from tests.faults.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


async def enqueue(app: App, task: str, count: int, **fields: object) -> list[str]:
    """``count`` jobs of ``task`` stored in one call; their ids, once accepted."""
    backend = await app.backend()
    jobs = [NewJob(str(uuid7()), task, b"{}", **fields) for _ in range(count)]  # type: ignore[arg-type]
    stored = await backend.job_enqueue_many(jobs)
    return [j.id for j in stored]


def sqlite_locked(url: str) -> bool:
    """Whether some process holds the write lock of the SQLite file behind
    ``url`` for longer than a write takes; False for other backends."""
    if not url.startswith("sqlite:///"):
        return False
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    conn = sqlite3.connect(path, timeout=1.0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return True
    finally:
        conn.close()
    return False


@dataclass
class Workers:
    """Spawns ``python -m tests.faults.worker_main`` against one backend URL."""

    url: str
    ledger: Ledger
    folder: Path
    lease: float = 1.0
    grace: float = 5.0
    env: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.folder / "barrier").mkdir(parents=True, exist_ok=True)

    def start(self, count: int = 1, *args: str, prefix: Sequence[str] = (),
              **env: str) -> list[subprocess.Popen[bytes]]:  # fmt: skip
        """``count`` processes waiting on the barrier; ``release`` lets them go.
        ``prefix`` wraps the interpreter (``faketime``)."""
        barrier = self.folder / "barrier"
        (barrier / "go").unlink(missing_ok=True)
        for ready in barrier.glob("ready.*"):
            ready.unlink()
        started = [self._spawn(args, prefix, env) for _ in range(count)]
        self.procs += started
        return started

    def release(self, count: int, timeout: float = 60.0) -> None:
        barrier = self.folder / "barrier"
        deadline = time.monotonic() + timeout
        while len(list(barrier.glob("ready.*"))) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} workers reached the barrier")
            time.sleep(0.02)
        (barrier / "go").touch()

    def run(self, count: int = 1, *args: str, **env: str) -> list[subprocess.Popen[bytes]]:
        started = self.start(count, *args, **env)
        self.release(count)
        return started

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.ledger.fault("kill", pid=proc.pid)
        proc.kill()
        proc.wait(10)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGSTOP ``proc``. On SQLite, a stop that lands inside one of its write
        transactions (a heartbeat) holds the file's lock while it is frozen and
        stalls every other process: not the fault meant. Such a stop is undone
        (the write finishes) and tried again."""
        for _ in range(20):
            self.ledger.fault("stop", pid=proc.pid)
            proc.send_signal(signal.SIGSTOP)
            if not sqlite_locked(self.url):
                return
            self.resume(proc)
            # Stopped again at once, it would still be inside the same write:
            # wait (up to a second) for that write to end before the next try.
            sqlite_locked(self.url)
        raise RuntimeError(f"worker {proc.pid} held the SQLite write lock at every stop")

    def resume(self, proc: subprocess.Popen[bytes]) -> None:
        self.ledger.fault("cont", pid=proc.pid)
        proc.send_signal(signal.SIGCONT)

    def terminate(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
        self.ledger.fault("term", pid=proc.pid)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(10)
            # A wrapper (faketime) runs the worker as its child, which outlived
            # the wrapper's kill and served later tests' schemas: end the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def _spawn(self, args: Sequence[str], prefix: Sequence[str],
               env: dict[str, str]) -> subprocess.Popen[bytes]:  # fmt: skip
        full = (
            os.environ
            | self.env
            | env
            | {
                "OFFLOAD_BACKEND_URL": self.url,
                "OFFLOAD_RECOVER_INTERVAL": "0.2",
                "FAULT_LEDGER": str(self.ledger.path),
                "FAULT_MARKS": str(self.folder),
                "FAULT_BARRIER": str(self.folder / "barrier"),
                "FAULT_LEASE": str(self.lease),
                "FAULT_GRACE": str(self.grace),
                "PYTHONPATH": str(ROOT),
            }
        )
        command = [*prefix, sys.executable, "-m", "tests.faults.worker_main", *args]
        # A process group of its own, so that close() reaches a wrapped worker.
        if not self.quiet:
            return subprocess.Popen(command, env=full, cwd=ROOT, start_new_session=True)
        with (self.folder / "workers.log").open("ab") as log:
            return subprocess.Popen(command, env=full, cwd=ROOT, stdout=log, stderr=log,
                                    start_new_session=True)  # fmt: skip
