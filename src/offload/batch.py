"""Batches: continuations stored with the batch, and the one step that fires them.

A continuation is kept in the batch record as data (``NewBatch.then``), not as a
callback in some process's memory, so it fires even when the process that
created the batch is gone. ``settle`` may run in many workers at once: the
continuation jobs get ids derived from the batch id, so the backend stores each
once, and ``batch_finish`` is a one-time flag.

Appending to a batch and firing its continuations exclude each other (``guarded``):
otherwise an append could pass its "not finished" check, a settle read the
counts as all ended and fire the continuations, and the appended jobs run
after them as members of a finished batch. The exclusion is a one-slot
concurrency limit of the backend (``limit_acquire``), which every backend
keeps atomically and frees when its holder dies; both sides read the batch
again once they hold it. Only the final settle takes it, not every look.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from offload.backends.base import Backend
from offload.dependencies import advance
from offload.errors import BackendError
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


# How long one side may hold a batch's exclusion: far longer than the few calls
# it makes, and the time after which a holder that died no longer blocks others.
GUARD_SECONDS = 60.0


@asynccontextmanager
async def guarded(backend: Backend, batch_id: str) -> AsyncIterator[None]:
    """Hold the batch's exclusion (see the module's docstring) while inside."""
    key, holder = f"offload:batch:{batch_id}", uuid.uuid4().hex
    deadline = time.monotonic() + GUARD_SECONDS
    delay = 0.01
    while not await backend.limit_acquire(key, holder, 1, GUARD_SECONDS):
        if time.monotonic() > deadline:
            raise BackendError(f"batch {batch_id!r} stayed busy for {GUARD_SECONDS:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    try:
        yield
    finally:
        await backend.limit_release(key, holder)


def _due(batch: Batch | None, empty_ok: bool) -> bool:
    if batch is None or batch.finished_at is not None:
        return False
    return batch.ended or (empty_ok and batch.total == 0)


async def settle(app: App, backend: Backend, batch_id: str, *, empty_ok: bool = False) -> list[Job]:
    """Move on the batch's dependents whose parents have ended, then fire the
    batch's continuations if every job has ended and nobody has yet; returns the
    continuation jobs enqueued (empty when nothing was due)."""
    batch = await backend.batch_get(batch_id)
    if batch is None or batch.finished_at is not None:
        return []
    if batch.counts.get(State.SCHEDULED) and await advance(backend, batch.id):
        batch = await backend.batch_get(batch_id)
    if not _due(batch, empty_ok):
        return []
    async with guarded(backend, batch_id):
        batch = await backend.batch_get(batch_id)  # an append may have come first
        if batch is None or not _due(batch, empty_ok):
            return []
        news = continuation_jobs(batch)
        jobs = await app.enqueue_new_async(news) if news else []
        await backend.batch_finish(batch.id, [j.id for j in jobs])
    return jobs


def with_batch(jobs: Sequence[NewJob], batch_id: str, tenant: str) -> list[NewJob]:
    """The jobs as members of the batch: its id and its tenant, whatever they had."""
    return [dataclasses.replace(j, batch_id=batch_id, tenant=tenant) for j in jobs]
