"""job_cancels: the read-only check a worker makes to stop a cancelled job soon."""

from __future__ import annotations

from offload.backends import Backend

from .helpers import enqueue, enqueue_and_lease


async def test_reports_only_running_jobs_with_a_cancel_request(backend: Backend) -> None:
    asked = await enqueue_and_lease(backend)
    running = await enqueue_and_lease(backend)
    queued = await enqueue(backend, queue="elsewhere")
    await backend.job_cancel(asked.id)
    await backend.job_cancel(queued.id)  # cancelled outright: no request pending
    ids = [asked.id, running.id, queued.id, "00000000-0000-7000-8000-000000000000"]
    assert await backend.job_cancels(ids) == frozenset({asked.id})


async def test_an_empty_list_is_an_empty_answer(backend: Backend) -> None:
    assert await backend.job_cancels([]) == frozenset()
