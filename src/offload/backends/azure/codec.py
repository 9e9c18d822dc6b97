"""Jobs, events and keys as Table entities.

Times are fixed-width UTC strings so that a Table filter compares them in
order; bytes are split over properties of at most 64 KiB (the Table property
cap) inside the one entity (1 MiB cap), so a job stays one entity and every
transition one compare-and-set on its ETag.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from offload.errors import PayloadError
from offload.job import ErrorInfo, Event, Job, Salvage, decode_job
from offload.lifecycle import EventKind, State

CHUNK = 64 * 1024
MAX_CHUNKS = 15
"""At most 960 KiB of payload, result and checkpoint together fit one entity
next to the job's other fields."""
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
Entity = dict[str, Any]


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME)


def from_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, _TIME).replace(tzinfo=UTC)


def b64(text: str) -> str:
    """A key part safe for PartitionKey/RowKey (no ``/ \\ # ?``)."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def partition(queue: str) -> str:
    """A queue's partition holds its jobs, their ready rows and their events, so
    every transition is a one-partition transaction."""
    return "q_" + b64(queue)


def job_key(job_id: str) -> str:
    return "j_" + job_id


def cancel_key(job_id: str) -> str:
    return "c_" + job_id


def event_key(job_id: str, seq: int) -> str:
    return f"e_{job_id}_{seq:020d}"


def ready_key(job: Job) -> str:
    """Leasing reads ready rows in RowKey order: higher priority, then earlier
    ``run_at``, then older id, which is the contract's order."""
    inverted = (1 << 63) - job.priority
    return f"r_{inverted:020d}_{ts(job.run_at)}_{job.id}"


def ready_entity(job: Job, key: str) -> Entity:
    """A waiting job's ready row: a full copy of the job under its order key, so
    leasing reads the due jobs, in order, with their ETags, in one query.
    Every write of a waiting job rewrites it in the same transaction."""
    e = job_entity(job, key)
    e.update(RowKey=key, Kind="ready")
    return e


def int64(value: int) -> EntityProperty:
    return EntityProperty(value, EdmType.INT64)


def put_bytes(entity: Entity, name: str, data: bytes | None) -> int:
    """Store ``data`` as ``name0..nameN``; returns the chunks used."""
    if data is None:
        return 0
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    for n, chunk in enumerate(chunks):
        entity[f"{name}{n}"] = chunk
    entity[f"{name}N"] = len(chunks)
    return len(chunks)


def get_bytes(entity: Entity, name: str) -> bytes | None:
    count = entity.get(f"{name}N")
    if count is None:
        return None
    return b"".join(bytes(entity[f"{name}{n}"]) for n in range(int(count)))


def put_json(entity: Entity, name: str, value: Any) -> int:
    if value is None:
        return 0
    return put_bytes(entity, name, json.dumps(value, separators=(",", ":")).encode())


def get_json(entity: Entity, name: str) -> Any:
    raw = get_bytes(entity, name)
    return None if raw is None else json.loads(raw)


def job_entity(job: Job, ready: str | None) -> Entity:
    """The whole job as one entity (written with REPLACE, so cleared fields go)."""
    check_fits(job)
    e: Entity = {
        "PartitionKey": partition(job.queue), "RowKey": job_key(job.id), "Kind": "job",
        "Id": job.id, "Task": job.task, "Queue": job.queue, "Tenant": job.tenant,
        "State": job.state.value, "Priority": job.priority, "Attempts": job.attempts,
        "MaxAttempts": job.max_attempts, "CreatedAt": ts(job.created_at),
        "RunAt": ts(job.run_at), "CancelRequested": job.cancel_requested,
        "Ready": ready or "",
    }  # fmt: skip
    _optional(e, job)
    for name, data in _blobs(job):
        put_bytes(e, name, data)
    return e


def check_fits(job: Job) -> None:
    """Refuse a job too big for one entity before anything of it is written."""
    used = sum(0 if d is None else max(1, -(-len(d) // CHUNK)) for _, d in _blobs(job))
    if used > MAX_CHUNKS:
        raise PayloadError(
            f"job {job.id}: payload, result, checkpoint and error together exceed "
            f"{MAX_CHUNKS * CHUNK // 1024} KiB, the most one Azure Table entity holds"
        )


def _blobs(job: Job) -> list[tuple[str, bytes | None]]:
    def js(value: Any) -> bytes | None:
        return None if not value else json.dumps(value, separators=(",", ":")).encode()

    error = js(job.error.to_dict() if job.error else None)
    return [
        ("Payload", job.payload), ("Result", job.result_data),
        ("Checkpoint", job.checkpoint_data), ("Error", error), ("Meta", js(job.meta)),
    ]  # fmt: skip


def _optional(e: Entity, job: Job) -> None:
    for name, value in (
        ("Timeout", job.timeout), ("Progress", job.progress),
        ("ProgressMessage", job.progress_message), ("UniqueKey", job.unique_key),
        ("BatchId", job.batch_id), ("WorkerId", job.worker_id),
        ("LeaseToken", job.lease_token),
    ):  # fmt: skip
        if value is not None:
            e[name] = float(value) if name in ("Timeout", "Progress") else value
    for name, moment in (
        ("StartedAt", job.started_at), ("FinishedAt", job.finished_at),
        ("LeaseExpiresAt", job.lease_expires_at),
    ):  # fmt: skip
        if moment is not None:
            e[name] = ts(moment)


def to_job(e: Entity) -> Job:
    return decode_job(lambda f: _job(e, f))


def _job(e: Entity, f: Salvage) -> Job:
    created, run_at = from_ts(e["CreatedAt"]), from_ts(e["RunAt"])
    assert created is not None
    assert run_at is not None
    return Job(
        id=e["Id"], task=e["Task"], queue=e["Queue"], tenant=e["Tenant"],
        state=f("state", lambda: State(e["State"]), State.DEAD),
        payload=get_bytes(e, "Payload") or b"",
        priority=int(e["Priority"]), attempts=int(e["Attempts"]),
        max_attempts=int(e["MaxAttempts"]), created_at=created, run_at=run_at,
        timeout=_float(e.get("Timeout")), started_at=from_ts(e.get("StartedAt")),
        finished_at=from_ts(e.get("FinishedAt")), result_data=get_bytes(e, "Result"),
        error=f("error", lambda: _error(get_json(e, "Error")), None),
        checkpoint_data=get_bytes(e, "Checkpoint"), progress=_float(e.get("Progress")),
        progress_message=e.get("ProgressMessage"), unique_key=e.get("UniqueKey"),
        batch_id=e.get("BatchId"), worker_id=e.get("WorkerId"),
        lease_token=e.get("LeaseToken"), lease_expires_at=from_ts(e.get("LeaseExpiresAt")),
        cancel_requested=bool(e.get("CancelRequested")),
        meta=f("meta", lambda: get_json(e, "Meta") or {}, {}),
    )  # fmt: skip


def _error(data: Any) -> ErrorInfo | None:
    return ErrorInfo.from_dict(data) if data else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def event_entity(job: Job, seq: int, kind: EventKind, at: datetime, data: Any) -> Entity:
    e: Entity = {
        "PartitionKey": partition(job.queue), "RowKey": event_key(job.id, seq),
        "Kind": "event", "Seq": int64(seq), "JobId": job.id, "Tenant": job.tenant,
        "EventKind": kind.value, "At": ts(at),
    }  # fmt: skip
    put_json(e, "Data", data)
    return e


CONTROL_PARTITION = "control"
"""Where events of no job live in the jobs table (a queue's partition is ``q_…``)."""


def control_event_entity(event: Event) -> Entity:
    e: Entity = {
        "PartitionKey": CONTROL_PARTITION, "RowKey": f"e_{event.id:020d}", "Kind": "event",
        "Seq": int64(event.id), "Tenant": event.tenant, "EventKind": event.kind.value,
        "At": ts(event.at),
    }  # fmt: skip
    put_json(e, "Data", event.data)
    return e


def to_event(e: Entity) -> Event:
    at = from_ts(e["At"])
    assert at is not None
    seq = e["Seq"]
    seq = seq.value if isinstance(seq, EntityProperty) else seq
    return Event(int(seq), e.get("JobId"), e["Tenant"], EventKind(e["EventKind"]), at,
                 get_json(e, "Data") or {})  # fmt: skip
