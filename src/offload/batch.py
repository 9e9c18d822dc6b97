"""Batches: continuations stored with the batch, and the one step that fires them.

A continuation is kept in the batch record as data (``NewBatch.then``), not as a
callback in some process's memory, so it fires even when the process that
created the batch is gone. ``settle`` may run in many workers at once: the
continuation jobs get ids derived from the batch id, so the backend stores each
once, and ``batch_finish`` is a one-time flag.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from offload.backends.base import Backend
from offload.dependencies import advance
from offload.ids import derived_id, id_time_millis
from offload.job import Batch, Job, NewJob
from offload.lifecycle import State

if TYPE_CHECKING:
    from offload.app import App


def encode_then(jobs: Sequence[NewJob]) -> bytes | None:
    if not jobs:
        return None
    return json.dumps([
        {
            "task": j.task, "payload": base64.b64encode(j.payload).decode(),
            "queue": j.queue, "priority": j.priority, "max_attempts": j.max_attempts,
            "timeout": j.timeout, "meta": j.meta,
        }
        for j in jobs
    ]).encode()  # fmt: skip


def decode_then(data: bytes | None) -> list[dict[str, Any]]:
    return [] if data is None else list(json.loads(data))


def summary(batch: Batch) -> dict[str, Any]:
    """What a continuation receives in ``ctx.job.meta["batch"]``."""
    return {
        "id": batch.id, "name": batch.name, "total": batch.total,
        "counts": {str(state): n for state, n in batch.counts.items() if n},
    }  # fmt: skip


def continuation_jobs(batch: Batch) -> list[NewJob]:
    born = datetime.fromtimestamp(id_time_millis(batch.id) / 1000, UTC)
    info = summary(batch)
    return [
        NewJob(
            id=derived_id(born, "then", batch.id, str(index)),
            task=spec["task"],
            payload=base64.b64decode(spec["payload"]),
            queue=spec["queue"],
            tenant=batch.tenant,
            priority=spec["priority"],
            max_attempts=spec["max_attempts"],
            timeout=spec["timeout"],
            meta={**spec["meta"], "batch": info},
        )
        for index, spec in enumerate(decode_then(batch.then))
    ]


async def settle(app: App, backend: Backend, batch_id: str, *, empty_ok: bool = False) -> list[Job]:
    """Move on the batch's dependents whose parents have ended, then fire the
    batch's continuations if every job has ended and nobody has yet; returns the
    continuation jobs enqueued (empty when nothing was due)."""
    batch = await backend.batch_get(batch_id)
    if batch is None or batch.finished_at is not None:
        return []
    if batch.counts.get(State.SCHEDULED) and await advance(backend, batch.id):
        batch = await backend.batch_get(batch_id)
        if batch is None or batch.finished_at is not None:
            return []
    if not (batch.ended or (empty_ok and batch.total == 0)):
        return []
    news = continuation_jobs(batch)
    jobs = await app.enqueue_new_async(news) if news else []
    await backend.batch_finish(batch.id, [j.id for j in jobs])
    return jobs


def with_batch(jobs: Sequence[NewJob], batch_id: str, tenant: str) -> list[NewJob]:
    """The jobs as members of the batch: its id and its tenant, whatever they had."""
    return [dataclasses.replace(j, batch_id=batch_id, tenant=tenant) for j in jobs]
