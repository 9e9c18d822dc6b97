"""One function applies any lifecycle transition to a job read from Tables:
the Python twin of ``MemoryBackend._apply``, writing what the transition's
effect fields say with the values handed in, and building its events from
``offload.event_data`` (the handed part plus the transition's stamps)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from offload import event_data as ed
from offload import lifecycle as lc
from offload.job import ErrorInfo, Job
from offload.lifecycle import ErrorEffect, EventKind, LeaseEffect, RunAt, Transition


@dataclass(frozen=True)
class Handed:
    """The values a caller hands to a transition; the backend decides none."""

    data: Mapping[str, Any]
    worker_id: str | None = None
    seconds: float | None = None  # lease length for GRANT, delay for RunAt.AFTER
    error: ErrorInfo | None = None
    result: bytes | None = None
    checkpoint: bytes | None = None


NOTHING = Handed({})


def apply(
    job: Job, t: Transition, now: datetime, h: Handed
) -> tuple[Job, list[tuple[EventKind, dict[str, Any]]]]:
    """The job after ``t`` (a new object) and the events to append."""
    out = copy.copy(job)
    out.meta = copy.deepcopy(job.meta)
    holder = h.worker_id if t.lease is LeaseEffect.GRANT else job.worker_id
    out.state = t.target
    out.attempts = lc.count_attempts(t.attempts, job.attempts)
    if t.run_at is RunAt.NOW:
        out.run_at = now
    elif t.run_at is RunAt.AFTER:
        out.run_at = now + timedelta(seconds=h.seconds or 0.0)
    _lease(out, t.lease, now, h)
    _outcome(out, t, now, h)
    data = ed.stamped(t, dict(h.data), attempts=out.attempts, worker_id=holder,
                      run_at=out.run_at)  # fmt: skip
    return out, [(kind, dict(data)) for kind in t.events]


def _lease(job: Job, effect: LeaseEffect, now: datetime, h: Handed) -> None:
    if effect is LeaseEffect.GRANT:
        job.worker_id = h.worker_id
        job.lease_token = uuid.uuid4().hex
        job.lease_expires_at = now + timedelta(seconds=h.seconds or 0.0)
        job.started_at = now
    elif effect is LeaseEffect.DROP:
        job.lease_token = job.lease_expires_at = job.worker_id = None
        job.cancel_requested = False


def _outcome(job: Job, t: Transition, now: datetime, h: Handed) -> None:
    if t.error is ErrorEffect.SET:
        job.error = h.error
    elif t.error is ErrorEffect.CLEAR:
        job.error = None
    if t.sets_finished:
        job.finished_at = now
    elif t.clears_finished:
        job.finished_at = None
    if t.stores_result:
        job.result_data = h.result
    if t.stores_checkpoint and h.checkpoint is not None:
        job.checkpoint_data = h.checkpoint
