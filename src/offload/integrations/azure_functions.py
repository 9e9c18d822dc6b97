"""Azure Functions queue trigger: run offload jobs from Storage Queue messages.

``pip install 'offload[azure-functions]'``. The ``azure://`` backend sends one
message per job that lands waiting, naming it and visible when it is due; the
Functions host receives it and calls ``handle_queue_message``, which leases
that very job (``AzureBackend.job_lease_one``: if it is still waiting, due and
not paused) and runs it through the worker's own lifecycle: attempt counted,
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
from offload.backends.azure import AzureBackend
from offload.backends.azure.delivery import parse
from offload.errors import ConfigurationError
from offload.job import Job
from offload.lifecycle import WAITING, State
from offload.worker import Worker

__all__ = ["blueprint", "handle_queue_message"]

PAUSED_RECHECK = 60.0
"""How long a message waits before a trigger looks again at a job a pause holds."""


async def handle_queue_message(app: App, msg: func.QueueMessage) -> Job | None:
    """Run the job ``msg`` names, if it is waiting and due, and return it as it
    ended up; a job already taken, ended or not due yet is returned as it is,
    and ``None`` stands for a job that no longer exists."""
    job_id, queue = parse(msg.get_body().decode())
    backend = await _azure(app)
    worker = Worker(app, [queue], concurrency=1, handle_signals=False, burst=True,
                    worker_id=f"functions:{socket.gethostname()}:{os.getpid()}")  # fmt: skip
    leased = await backend.job_lease_one(worker.id, job_id, worker.lease_seconds, queue)
    if leased is None and await backend.job_expire_one(job_id) is not None:
        # Its lease ran out: the host that ran it died, and this is its message
        # come back. Redelivered like after a worker crash, attempt counted.
        leased = await backend.job_lease_one(worker.id, job_id, worker.lease_seconds, queue)
    if leased is None:
        return await _not_leased(backend, job_id)
    ran = await worker.run_one(leased)
    if ran is not None:
        ran.serializer = app.serializer
    return ran


async def _azure(app: App) -> AzureBackend:
    backend = await app.backend()
    if not isinstance(backend, AzureBackend):
        raise ConfigurationError(
            f"the Azure Functions trigger needs an azure:// backend, not {app.backend_url!r}"
        )
    return backend


async def _not_leased(backend: AzureBackend, job_id: str) -> Job | None:
    """Someone else runs or ran it, it ended, it is not due yet (a message
    received before a due time past the 7-day visibility cap), or a pause
    holds it. The host deletes this message when the function returns, so a
    job not ended gets a new one: at its due time; held by a pause,
    ``PAUSED_RECHECK`` seconds from now; running, when its lease would end."""
    job = await backend.job_get(job_id)
    now = datetime.now(UTC)
    if job is not None and job.state in WAITING:
        await backend.signal(job, at_least=PAUSED_RECHECK if job.run_at <= now else 0.0)
    elif job is not None and job.state is State.RUNNING and job.lease_expires_at is not None:
        # Someone runs it now: look again once its lease would have run out,
        # in case that someone dies.
        await backend.signal(job, at_least=(job.lease_expires_at - now).total_seconds() + 1)
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
