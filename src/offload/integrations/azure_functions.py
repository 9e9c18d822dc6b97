"""Azure Functions queue trigger: run offload jobs from Storage Queue messages.

``pip install 'offload[azure-functions]'``. The ``azure://`` backend sends one
message per job that lands waiting, naming it and visible when it is due; the
Functions host receives it and calls ``handle_queue_message``, which leases a
job of that queue (the named one unless a job before it in the queue's order
is due too) and runs it through the worker's own lifecycle: attempt counted,
events, heartbeats, cancellation, result, retry with the task's backoff, dead
letter. A failure with attempts left schedules the retry itself (a new
message, visible at the retry time) and returns normally, so the host deletes
the message instead of moving it to ``<queue>-poison``. A host that dies mid-run
leaves the lease to expire; any worker's recovery then redelivers the job.

Messages are base64 JSON, the host's default ``messageEncoding``.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from offload.app import App
from offload.backends.azure.delivery import parse
from offload.job import Job
from offload.worker import Worker

__all__ = ["blueprint", "handle_queue_message"]


async def handle_queue_message(app: App, msg: func.QueueMessage) -> Job | None:
    """Run the job ``msg`` names (or the one due before it in its queue) and
    return it as it ended up; ``None`` for a job that no longer exists."""
    job_id, queue = parse(msg.get_body().decode())
    backend = await app.backend()
    worker = Worker(app, [queue], concurrency=1, handle_signals=False, burst=True,
                    worker_id=f"functions:{socket.gethostname()}:{os.getpid()}")  # fmt: skip
    leased = await backend.job_lease(worker.id, [queue], 1, worker.lease_seconds)
    if not leased:
        return await _not_leased(app, job_id)
    ran = await worker.run_one(leased[0])
    if ran is not None:
        ran.serializer = app.serializer
    return ran


async def _not_leased(app: App, job_id: str) -> Job | None:
    """Someone else ran it, it ended, or it is not due yet: a message received
    before a due time past the 7-day visibility cap is sent again."""
    backend = await app.backend()
    job = await backend.job_get(job_id)
    signal = getattr(backend, "signal", None)
    if job is not None and not job.ended and job.run_at > datetime.now(UTC) and signal:
        await signal(job)
    return job


def blueprint(
    app: App, queues: list[str] | tuple[str, ...] = ("default",),
    connection: str = "AzureWebJobsStorage",
) -> Any:  # fmt: skip
    """A ``func.Blueprint`` with one queue trigger per offload queue (Python v2
    programming model): ``function_app.register_functions(blueprint(app, ...))``.

    The trigger watches the Storage queue the ``azure://`` backend uses for that
    offload queue, on the account of the app setting named ``connection``."""
    from offload.backends.azure._url import parse as parse_url
    from offload.backends.azure.clients import storage_queue_name

    prefix = parse_url(app.backend_url).prefix
    bp = func.Blueprint()  # type: ignore[no-untyped-call]
    for queue in queues:
        name = storage_queue_name(prefix, queue)
        bp.function_name(f"offload_{name.replace('-', '_')}")(
            bp.queue_trigger(arg_name="msg", queue_name=name, connection=connection)(_handler(app))
        )
    return bp


def _handler(app: App) -> Any:
    async def handler(msg: func.QueueMessage) -> None:
        await handle_queue_message(app, msg)

    return handler
