"""Rows to offload's data classes and back; no I/O.

Timestamps arrive in the session's time zone, which the backend pins to UTC;
a caller's own connection (transactional enqueue) may use another, so the few
timestamps read there are normalised with ``utc``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from offload.job import (
    Batch,
    Cancellation,
    CancelOutcome,
    ErrorInfo,
    Event,
    Job,
    NewBatch,
    NewJob,
    Pause,
    Schedule,
    WorkerInfo,
    decode_job,
)
from offload.lifecycle import EventKind, State

Row = tuple[Any, ...]


def job(row: Row) -> Job:
    """A job from the first ``len(COLUMNS)`` values of a row, in that order."""
    (id_, task, queue, tenant, state, payload, priority, attempts, max_attempts,
     created_at, run_at, timeout, started_at, finished_at, result, error, checkpoint,
     progress, progress_message, unique_key, batch_id, worker_id, lease_token,
     lease_expires_at, cancel_requested, meta) = row[:26]  # fmt: skip
    # Positional, in the dataclass's order (COLUMNS follows it): cheaper than
    # keywords for every job of a lease or a listing.
    return decode_job(lambda f: Job(
        id_, task, queue, tenant, f("state", lambda: State(state), State.DEAD), payload,
        priority, attempts, max_attempts, created_at, run_at, timeout, started_at, finished_at,
        result, f("error", lambda: None if error is None else ErrorInfo.from_dict(error), None),
        checkpoint, progress, progress_message, unique_key, batch_id, worker_id, lease_token,
        lease_expires_at, cancel_requested, f("meta", lambda: _meta(meta), {}),
    ))  # fmt: skip


def _meta(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"meta is not a JSON object: {value!r:.60}")
    return value


_STATES = {state.value: state for state in State}

_CANCEL_BRANCHES = {"cancelled": CancelOutcome.CANCELLED, "requested": CancelOutcome.REQUESTED}


def cancellation(row: Row) -> Cancellation:
    """A ``job_cancel`` row: the branch that answered, then the job. The job was
    only read (``found``) when it had ended, or was running with its cancel
    already requested."""
    job_ = job(row[1:])
    outcome = _CANCEL_BRANCHES.get(row[0])
    if outcome is None:
        outcome = CancelOutcome.REQUESTED if job_.state is State.RUNNING else CancelOutcome.ENDED
    return Cancellation(job_, outcome)


def stored(new: NewJob, row: Row) -> Job:
    """A freshly inserted job: what the database decided (state, clock) joined
    with what the caller sent, so a bulk insert need not read every column back."""
    _id, state, created_at, run_at = row
    return Job(
        id=new.id, task=new.task, queue=new.queue, tenant=new.tenant, state=_STATES[state],
        payload=new.payload, priority=new.priority, attempts=0,
        max_attempts=new.max_attempts, created_at=utc(created_at), run_at=utc(run_at),
        timeout=new.timeout, unique_key=new.unique_key, batch_id=new.batch_id,
        meta=dict(new.meta),
    )  # fmt: skip


def event(row: Row) -> Event:
    id_, job_id, tenant, kind, at, data = row
    return Event(id_, job_id, tenant, EventKind(kind), at, data)


def pause(row: Row) -> Pause:
    tenant, queue, at = row
    return Pause(tenant, queue, at)


def schedule(row: Row) -> Schedule:
    """A schedule from a row in ``_sql.SCHEDULE_COLUMNS`` order."""
    (tenant, id_, task, payload, cron, timezone, queue, priority, max_attempts, timeout,
     unique_job, next_run_at, last_run_at, last_job_id, created_at, updated_at,
     meta, description) = row  # fmt: skip
    return Schedule(
        id=id_, task=task, payload=payload, cron=cron, next_run_at=next_run_at,
        tenant=tenant, timezone=timezone, queue=queue, priority=priority,
        max_attempts=max_attempts, timeout=timeout, unique=unique_job,
        last_run_at=last_run_at, last_job_id=last_job_id, created_at=created_at,
        updated_at=updated_at, meta=meta, description=description,
    )  # fmt: skip


def schedule_params(s: Schedule) -> dict[str, Any]:
    """What ``schedule_upsert`` writes: the rule, never the history (``created_at``,
    ``last_run_at``, ``last_job_id``), which belongs to the stored row."""
    return {
        "tenant": s.tenant, "id": s.id, "task": s.task, "payload": s.payload,
        "cron": s.cron, "timezone": s.timezone, "queue": s.queue, "priority": s.priority,
        "max_attempts": s.max_attempts, "timeout": s.timeout, "unique_job": s.unique,
        "next_run_at": s.next_run_at, "meta": Jsonb(s.meta), "description": s.description,
    }  # fmt: skip


def batch(row: Row) -> Batch:
    """A batch from a row in ``_sql.BATCH_COLUMNS`` order followed by its counts,
    a JSON object of state to number of jobs."""
    (id_, tenant, created_at, name, then_jobs, finished_at, continuation_ids, meta,
     counts) = row  # fmt: skip
    return Batch(
        id=id_, tenant=tenant, created_at=created_at, name=name, then=then_jobs,
        finished_at=finished_at, continuation_ids=list(continuation_ids),
        counts={State(state): int(n) for state, n in counts.items()}, meta=meta,
    )  # fmt: skip


def batch_params(new: NewBatch) -> dict[str, Any]:
    return {"id": new.id, "tenant": new.tenant, "name": new.name, "then_jobs": new.then,
            "meta": Jsonb(new.meta)}  # fmt: skip


def worker(row: Row) -> WorkerInfo:
    """A worker from a ``worker_list`` row."""
    (id_, hostname, pid, queues, concurrency, started_at, job_ids, last_seen_at,
     meta) = row  # fmt: skip
    return WorkerInfo(
        id=id_, hostname=hostname, pid=pid, queues=list(queues), concurrency=concurrency,
        started_at=started_at, job_ids=list(job_ids), last_seen_at=last_seen_at, meta=meta,
    )  # fmt: skip


def worker_params(info: WorkerInfo, ttl: float) -> dict[str, Any]:
    """What ``worker_beat`` writes; ``last_seen_at`` is left to the server's clock,
    whatever the worker put there."""
    return {
        "id": info.id, "hostname": info.hostname, "pid": info.pid,
        "queues": list(info.queues), "concurrency": info.concurrency,
        "started_at": info.started_at, "job_ids": list(info.job_ids),
        "meta": Jsonb(info.meta), "ttl": float(ttl),
    }  # fmt: skip


def utc(moment: datetime) -> datetime:
    return moment if moment.utcoffset() is None or moment.tzinfo is UTC else moment.astimezone(UTC)


def enqueue_params(jobs: Sequence[NewJob]) -> dict[str, Any]:
    """Column arrays for ``job_enqueue``: one parameter per column, whatever the
    batch size, so a batch is one statement and one round trip. An optional
    column that no job of the batch sets is ``None`` (the query reads the
    default), which saves building and parsing an array of NULLs."""
    return {
        "ids": [j.id for j in jobs],
        "tasks": [j.task for j in jobs],
        "queues": [j.queue for j in jobs],
        "tenants": [j.tenant for j in jobs],
        "payloads": [j.payload for j in jobs],
        "priorities": [j.priority for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "timeouts": _column([j.timeout for j in jobs]),
        "delays": _column([float(j.delay) if j.delay else None for j in jobs]),
        "run_ats": _column([j.run_at for j in jobs]),
        "unique_keys": _column([j.unique_key for j in jobs]),
        "batch_ids": _column([j.batch_id for j in jobs]),
        "metas": _column([json.dumps(j.meta) if j.meta else None for j in jobs]),
    }


def enqueue_one_params(job: NewJob) -> dict[str, Any]:
    """Scalar parameters for ``job_enqueue_one``; ``None`` reads as the default."""
    return {
        "id": job.id, "task": job.task, "queue": job.queue, "tenant": job.tenant,
        "payload": job.payload, "priority": job.priority, "max_attempts": job.max_attempts,
        "timeout": job.timeout, "delay": float(job.delay) if job.delay else None,
        "run_at": job.run_at, "unique_key": job.unique_key, "batch_id": job.batch_id,
        "meta": json.dumps(job.meta) if job.meta else None,
    }  # fmt: skip


def _column(values: list[Any]) -> list[Any] | None:
    return None if all(v is None for v in values) else values


def is_uuid(value: str) -> bool:
    """Ids are UUIDs; anything else names no job, and is answered without a query
    (the database would refuse the cast)."""
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True
