"""The JSON shapes of jobs, events, batches, schedules and pauses, written once
for the API and the stream, with their schemas for the OpenAPI document at the
end, beside the functions whose output they describe.

Payloads, results and checkpoints are decoded with the app's serializer; a value
that cannot be decoded is shown as ``null`` with a note instead of failing the
whole response, because a dashboard must still open the job that broke.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from offload.batch import decode_then
from offload.job import Batch, Event, Job, Pause, Schedule
from offload.lifecycle import EventKind, State
from offload.observability.logs import redact
from offload.web.openapi import (
    ANY,
    BOOL,
    COUNTS,
    INT,
    NSTR,
    NUM_OR_NULL,
    STATES,
    STR,
    TIME,
    Component,
    array,
    obj,
)


def iso(value: datetime | None) -> str | None:
    """``value.isoformat()``, written by orjson: the same text (RFC 3339, the
    fraction only when there is one) in a third of the time, and a page of 50
    jobs shows 200 of them."""
    if value is None:
        return None
    try:
        return orjson.dumps(value)[1:-1].decode()
    except orjson.JSONEncodeError:  # a tzinfo orjson does not know
        return value.isoformat()


def _decoded(read: Callable[[], Any]) -> tuple[Any, str | None]:
    try:
        return read(), None
    except Exception as exc:  # any serializer may raise anything on bad bytes
        return None, f"cannot decode: {type(exc).__name__}"


def links(root: str, job_id: str) -> dict[str, str]:
    base = f"{root}/api/v1/jobs/{job_id}"
    return {"self": base, "status": f"{base}/status", "output": f"{base}/output",
            "events": f"{base}/events", "stream": f"{base}/stream"}  # fmt: skip


def snapshot(job: Job) -> dict[str, Any]:
    """What a live view needs to redraw a row without fetching the job again."""
    return {
        "id": job.id,
        "task": job.task,
        "queue": job.queue,
        "tenant": job.tenant,
        "state": job.state.value,
        "attempts": job.attempts,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "cancel_requested": job.cancel_requested,
        "batch_id": job.batch_id,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def job_summary(job: Job, root: str) -> dict[str, Any]:
    """A job in a list: everything but the decoded payload, result and checkpoint."""
    return snapshot(job) | {
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "run_at": iso(job.run_at),
        "unique_key": job.unique_key,
        "worker_id": job.worker_id,
        "error": None if job.error is None else _shown(job.error.to_dict()),
        "links": links(root, job.id),
    }


def job_detail(job: Job, root: str) -> dict[str, Any]:
    args, args_note = _decoded(lambda: job.arguments)
    result, result_note = _decoded(lambda: job.result)
    checkpoint, checkpoint_note = _decoded(lambda: job.checkpoint)
    notes = {k: v for k, v in (("args", args_note), ("result", result_note),
                                 ("checkpoint", checkpoint_note)) if v}  # fmt: skip
    if job.decode_error is not None:  # fields of the stored row itself (offload.job.Salvage)
        notes["record"] = job.decode_error
    return job_summary(job, root) | {
        "args": args,
        "result": result,
        "checkpoint": checkpoint,
        "decode_errors": notes,
    }


def _shown(error: dict[str, Any]) -> dict[str, Any]:
    """An error as the API and dashboard show it: credentials masked, also in
    errors stored before the worker masked them, or by another writer."""
    for key in ("message", "traceback"):
        if isinstance(error.get(key), str):
            error[key] = redact(error[key])
    return error


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "job_id": event.job_id,
        "tenant": event.tenant or None,  # job.EVERY_TENANT: a pause of every tenant
        "kind": event.kind.value,
        "at": iso(event.at),
        "data": event.data,
    }


# orchestration ---------------------------------------------------------------------


def batch_links(root: str, batch_id: str) -> dict[str, str]:
    base = f"{root}/api/v1/batches/{batch_id}"
    return {"self": base, "jobs": f"{base}/jobs", "cancel": f"{base}/cancel",
            "stream": f"{base}/stream"}  # fmt: skip


def batch_json(batch: Batch, root: str) -> dict[str, Any]:
    """A batch with every state counted (zeros included, so a client never has
    to guess a missing key) and ``progress`` as the fraction of jobs ended."""
    ended = sum(n for state, n in batch.counts.items() if state.ended)
    total = batch.total
    return {
        "id": batch.id,
        "tenant": batch.tenant,
        "name": batch.name,
        "created_at": iso(batch.created_at),
        "finished_at": iso(batch.finished_at),
        "total": total,
        "ended": ended,
        "progress": ended / total if total else None,
        "done": batch.ended or batch.finished_at is not None,
        "counts": {state.value: batch.counts.get(state, 0) for state in State},
        "then": _then(batch),
        "continuation_ids": list(batch.continuation_ids),
        "links": batch_links(root, batch.id),
    }


def _then(batch: Batch) -> list[dict[str, Any]]:
    try:
        return [{"task": str(t["task"]), "queue": str(t["queue"])} for t in decode_then(batch.then)]
    except Exception:  # bytes another version wrote; the batch itself still shows
        return []


def schedule_links(root: str, schedule: Schedule) -> dict[str, str | None]:
    base = f"{root}/api/v1/schedules/{quote(schedule.id, safe='')}"
    last = schedule.last_job_id
    return {"self": f"{base}?tenant={quote(schedule.tenant, safe='')}",
            "last_job": None if last is None else f"{root}/api/v1/jobs/{last}"}  # fmt: skip


def schedule_json(
    schedule: Schedule, upcoming: Sequence[datetime], args: Any, root: str
) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "tenant": schedule.tenant,
        "task": schedule.task,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "description": schedule.description,
        "args": args,
        "queue": schedule.queue,
        "priority": schedule.priority,
        "max_attempts": schedule.max_attempts,
        "timeout": schedule.timeout,
        "unique": schedule.unique,
        "next_run_at": iso(schedule.next_run_at),
        "upcoming": [iso(t) for t in upcoming],
        "last_run_at": iso(schedule.last_run_at),
        "last_job_id": schedule.last_job_id,
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.updated_at),
        "links": schedule_links(root, schedule),
    }


def pause_json(pause: Pause) -> dict[str, Any]:
    return {"tenant": pause.tenant, "queue": pause.queue, "at": iso(pause.at)}


# schemas ---------------------------------------------------------------------------

SNAPSHOT = {
    "id": STR,
    "task": STR,
    "queue": STR,
    "tenant": STR,
    "state": STATES,
    "attempts": INT,
    "progress": NUM_OR_NULL,
    "progress_message": NSTR,
    "cancel_requested": BOOL,
    "batch_id": NSTR,
    "created_at": TIME,
    "started_at": TIME,
    "finished_at": TIME,
}
ERROR = {"oneOf": [{"type": "null"}, obj({"type": STR, "message": STR, "traceback": NSTR})]}
SUMMARY = SNAPSHOT | {
    "priority": INT,
    "max_attempts": INT,
    "timeout": NUM_OR_NULL,
    "run_at": TIME,
    "unique_key": NSTR,
    "worker_id": NSTR,
    "error": ERROR,
    "links": obj({k: STR for k in ("self", "status", "output", "events", "stream")}),
}
DETAIL = SUMMARY | {
    "args": ANY,
    "result": ANY,
    "checkpoint": ANY,
    "decode_errors": {"type": "object", "additionalProperties": STR},
}
JOB_SNAPSHOT = Component("JobSnapshot", obj(SNAPSHOT))
JOB_SUMMARY = Component("JobSummary", obj(SUMMARY))
JOB = Component("Job", obj(DETAIL))
EVENT = Component(
    "Event",
    obj(
        {
            "id": INT,
            # null for a pause, a resume or a finished batch (lifecycle.CONTROL_KINDS);
            # tenant null for a pause of every tenant
            "job_id": NSTR,
            "tenant": NSTR,
            "kind": {"type": "string", "enum": [k.value for k in EventKind]},
            "at": {"type": "string", "format": "date-time"},
            "data": {"type": "object"},
        }
    ),
)
JOB_WITH_EVENTS = Component("JobWithEvents", obj(DETAIL | {"events": array(EVENT)}))
JOB_PAGE = Component("JobPage", obj({"jobs": array(JOB_SUMMARY), "next_before": NSTR}))
BATCH = Component(
    "Batch",
    obj(
        {
            "id": STR,
            "tenant": STR,
            "name": NSTR,
            "created_at": {"type": "string", "format": "date-time"},
            "finished_at": TIME,
            "total": INT,
            "ended": INT,
            "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "done": BOOL,
            "counts": COUNTS,
            "then": array(obj({"task": STR, "queue": STR})),
            "continuation_ids": array(STR),
            "links": obj({k: STR for k in ("self", "jobs", "cancel", "stream")}),
        }
    ),
)
SCHEDULE = Component(
    "Schedule",
    obj(
        {
            "id": STR,
            "tenant": STR,
            "task": STR,
            "cron": STR,
            "timezone": STR,
            "description": NSTR,
            "args": ANY,
            "queue": STR,
            "priority": INT,
            "max_attempts": INT,
            "timeout": NUM_OR_NULL,
            "unique": BOOL,
            "next_run_at": TIME,
            "upcoming": array({"type": "string", "format": "date-time"}),
            "last_run_at": TIME,
            "last_job_id": NSTR,
            "created_at": TIME,
            "updated_at": TIME,
            "links": obj({"self": STR, "last_job": NSTR}),
        }
    ),
)
PAUSE = Component("Pause", obj({"tenant": NSTR, "queue": NSTR, "at": TIME}))
