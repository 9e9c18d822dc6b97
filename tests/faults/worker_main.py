"""The worker program of the fault scenarios: ``python -m tests.faults.worker_main``.

It registers the ``f.*`` tasks, waits on the barrier (a file the test creates
once every process is ready, so they race from the same instant), then runs a
``Worker`` with the short lease and grace the environment gives.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
import time
from pathlib import Path

from offload import App
from offload.worker import Worker
from tests.faults.tasks import CrashAfterReturn, ledger_from_env, register


def wait_on_barrier() -> None:
    folder = os.environ.get("FAULT_BARRIER")
    if not folder:
        return
    (Path(folder) / f"ready.{os.getpid()}").touch()
    go = Path(folder) / "go"
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("the barrier never opened")
        time.sleep(0.01)


def main() -> None:
    # A worker that outlives its SIGTERM is asked for its threads' stacks
    # (the soak sends SIGUSR1 before it kills it): they go to its log.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    app = App(os.environ["OFFLOAD_BACKEND_URL"], middleware=[CrashAfterReturn()])
    register(app, ledger_from_env())
    wait_on_barrier()
    worker = Worker(
        app,
        burst="--burst" in sys.argv,
        queues=os.environ.get("FAULT_QUEUES", "default").split(","),
        concurrency=int(os.environ.get("FAULT_CONCURRENCY", "4")),
        poll_interval=0.1,
        lease_seconds=float(os.environ.get("FAULT_LEASE", "1.0")),
        grace_period=float(os.environ.get("FAULT_GRACE", "5")),
    )
    asyncio.run(worker.run())


if __name__ == "__main__":
    main()
