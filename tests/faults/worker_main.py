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


def _dump(signum: int, frame: object) -> None:
    """A worker that outlives its SIGTERM is asked (SIGUSR1, by the soak) for
    its threads' stacks and its event loop's tasks: they go to its log."""
    faulthandler.dump_traceback(all_threads=True)
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no loop running
        return
    for task in tasks:
        print(f"task {task.get_name()}: {task.get_coro()!r}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


def main() -> None:
    signal.signal(signal.SIGUSR1, _dump)
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
    asyncio.run(serve(app, worker))


async def serve(app: App, worker: Worker) -> None:
    """The worker, then the app's backend closed, as ``offload worker`` does
    (cli/runtime.py). Left open, asyncio.run cancels the PostgreSQL pool's
    maintenance tasks instead; psycopg_pool's async worker catches a
    CancelledError that lands inside a task it runs and waits on its queue
    again, so about one SIGTERM in twenty left the process hanging for ever."""
    try:
        await worker.run()
    finally:
        await app.close_async()


if __name__ == "__main__":
    main()
