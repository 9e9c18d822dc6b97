"""The app ``bench/hosts.py`` runs on its worker hosts: one task that takes an
``int`` (validated, as in ``apps.py``) and records each run in a ledger.

A million runs have to be recorded cheaply and in a place the broker cannot
touch: each worker process appends to a file of its own, opened once, one
``os.write`` of one fixed-width line per run (``O_APPEND``, so a line is whole
or absent). Fixed width makes the file's size the number of runs it holds, so
the sampler counts finished runs without reading a byte.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from offload import App, JobContext

TASK_NAME = "bench.hosts"
LEDGER_ENV = "OFFLOAD_BENCH_LEDGER"
HOST_ENV = "OFFLOAD_BENCH_HOST"
# job id, attempt, pid, start and end (wall clock: the hosts share one machine's)
LINE = "{job} {attempt:03d} {pid:08d} {start:.6f} {end:.6f}\n"
LINE_BYTES = len(LINE.format(job="0" * 36, attempt=1, pid=1, start=1e9, end=1e9))


@dataclass(slots=True)
class Run:
    job_id: str
    attempt: int
    pid: int
    start: float
    end: float


class Ledger:
    """Opened on the first run, so importing the app (the CLI does, as does
    the enqueuer) creates no file."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def record(self, job_id: str, attempt: int, start: float, end: float) -> None:
        if self._fd is None:
            folder = Path(os.environ[LEDGER_ENV])
            host = os.environ.get(HOST_ENV) or socket.gethostname()
            name = f"runs-{host}-{os.getpid()}.txt"
            self._fd = os.open(folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = LINE.format(job=job_id, attempt=attempt, pid=os.getpid(), start=start, end=end)
        os.write(self._fd, line.encode())


def read_runs(folder: Path) -> Iterator[Run]:
    for path in sorted(folder.glob("runs-*.txt")):
        with path.open() as lines:
            for line in lines:
                job, attempt, pid, start, end = line.split()
                yield Run(job, int(attempt), int(pid), float(start), float(end))


def runs_recorded(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("runs-*.txt")) // LINE_BYTES


def make_app(url: str) -> App:
    app = App(url)
    ledger = Ledger()

    @app.task(name=TASK_NAME, max_attempts=3)
    async def record(n: int, ctx: JobContext) -> None:
        """A no-op between two clock readings: what is measured is offload."""
        start = time.time()
        ledger.record(ctx.job.id, ctx.attempt, start, time.time())

    return app


app = make_app(os.environ.get("OFFLOAD_BACKEND_URL", "memory://"))
