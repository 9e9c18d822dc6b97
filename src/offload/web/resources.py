"""The JSON shapes of jobs and events, written once for the API and the stream.

Payloads, results and checkpoints are decoded with the app's serializer; a value
that cannot be decoded is shown as ``null`` with a note instead of failing the
whole response, because a dashboard must still open the job that broke.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from offload.job import Event, Job


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


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
        "batch_id": job.batch_id,
        "worker_id": job.worker_id,
        "error": None if job.error is None else job.error.to_dict(),
        "links": links(root, job.id),
    }


def job_detail(job: Job, root: str) -> dict[str, Any]:
    args, args_note = _decoded(lambda: job.arguments)
    result, result_note = _decoded(lambda: job.result)
    checkpoint, checkpoint_note = _decoded(lambda: job.checkpoint)
    notes = {k: v for k, v in (("args", args_note), ("result", result_note),
                                 ("checkpoint", checkpoint_note)) if v}  # fmt: skip
    return job_summary(job, root) | {
        "args": args,
        "result": result,
        "checkpoint": checkpoint,
        "decode_errors": notes,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "job_id": event.job_id,
        "tenant": event.tenant,
        "kind": event.kind.value,
        "at": iso(event.at),
        "data": event.data,
    }
