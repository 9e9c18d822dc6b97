"""Job, event, pause, schedule and batch values as they sit in Redis, and back.

A job is one hash: text fields as UTF-8, payload/result/checkpoint as raw bytes,
times as integer microseconds of the server clock, ``meta`` and ``error`` as
JSON. An absent field is ``None``, so an empty result stays distinct from no
result. The lease fields (token, expiry, worker, cancel request) count only
while the job is running: the scripts overwrite them at the next lease instead
of deleting them at every transition, which saves a write per job. Events are
JSON strings written by the scripts. Schedules and batches are hashes in the
same style; a pause is one field of the pauses hash (see ``pause_field``); a
worker's report is one JSON field of the workers hash (see ``worker_json``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from offload import lifecycle as lc
from offload.backends.redis.keys import lane
from offload.job import (
    Batch,
    ErrorInfo,
    Event,
    Job,
    NewBatch,
    NewJob,
    Pause,
    Salvage,
    Schedule,
    WorkerInfo,
    decode_job,
)
from offload.lifecycle import EventKind, State, Transition

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRIORITY_SPAN = 10**19
"""Priorities are stored inverted in 20 digits so that text order puts the
highest first; anything beyond ±PRIORITY_SPAN/2 is clamped."""


_MICROSECOND = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    # Multiplying one microsecond is exact and about half the cost of
    # timedelta(microseconds=us); several run per job read.
    return EPOCH + _MICROSECOND * us


def seconds_us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def rule(t: Transition) -> str:
    """A transition as the scripts read it, every field taken from the lifecycle:
    a JSON object (``sources`` a set, as ``{"queued": true}``; ``events`` and
    ``stamps`` name lists; ``leased``, ``result``, ``checkpoint`` and ``waits``
    booleans; ``attempts``, ``run_at``, ``lease`` and ``error`` the effect values
    such as ``count``, ``after``, ``grant``; ``finished`` is ``set``, ``clear`` or
    ``keep``). The prelude's ``apply`` writes what it says, so no script
    re-decides an effect. JSON because every script call reads its rules again
    and ``cjson.decode`` runs in C: half the instructions of splitting a text in
    Lua, and the sources need no second pass to become a set.
    """
    finished = "set" if t.sets_finished else "clear" if t.clears_finished else "keep"
    return json.dumps({
        "sources": {s.value: True for s in sorted(t.sources, key=lambda s: s.value)},
        "target": t.target.value, "events": [e.value for e in t.events],
        "leased": t.leased, "attempts": t.attempts.value, "run_at": t.run_at.value,
        "lease": t.lease.value, "error": t.error.value, "finished": finished,
        "stamps": [s.value for s in t.stamps], "result": t.stores_result,
        "checkpoint": t.stores_checkpoint, "waits": t.waits,
    }, separators=(",", ":"))  # fmt: skip


def states_arg(states: Sequence[State] | frozenset[State]) -> str:
    return ",".join(sorted(s.value for s in states))


RULES = {t.name: rule(t) for t in lc.ALL}
"""Every transition's rule as its scripts' argument, encoded once per process."""
ENDED = states_arg(lc.ENDED)


def opt(value: str | None) -> str:
    """An optional text argument: ``""`` for none, else ``"="`` and the text."""
    return "" if value is None else "=" + value


@lru_cache(maxsize=256)
def priority_key(priority: int) -> str:
    half = PRIORITY_SPAN // 2
    return f"{half - max(-half + 1, min(half - 1, priority)):020d}"


def error_json(error: ErrorInfo) -> str:
    return json.dumps(error.to_dict(), separators=(",", ":"))


@lru_cache(maxsize=1024)
def _tenant_json(tenant: str) -> str:
    return json.dumps(tenant)


@lru_cache(maxsize=1024)
def _lane(tenant: str, queue: str) -> str:
    """The lane of a (tenant, queue) pair; a bulk enqueue asks for the same few."""
    return lane(tenant, queue)


def new_job_row(new: NewJob) -> list[str | int | None]:
    """One job as a row of enqueue.lua's JSON batch, in the order it reads them;
    the payload travels apart, as raw bytes, and the row ends with its length."""
    return [
        new.id, new.task, new.queue, new.tenant, str(new.priority),
        priority_key(new.priority), str(new.max_attempts),
        None if new.timeout is None else repr(float(new.timeout)),
        None if new.run_at is None else str(to_us(new.run_at)),
        "0" if not new.delay else str(seconds_us(new.delay)), new.unique_key, new.batch_id,
        json.dumps(new.meta, separators=(",", ":")) if new.meta else "{}",
        f'"job":{json.dumps(new.id)},"tenant":{_tenant_json(new.tenant)}',
        _lane(new.tenant, new.queue),
        None if new.unique_key is None else lane(new.tenant, new.unique_key),
        len(new.payload),
    ]  # fmt: skip


def stored_job(new: NewJob, created_at: datetime, run_at: datetime, state: State) -> Job:
    """The job enqueue.lua just stored, built without reading it back."""
    return Job(
        id=new.id, task=new.task, queue=new.queue, tenant=new.tenant, state=state,
        payload=new.payload, priority=new.priority, attempts=0,
        max_attempts=new.max_attempts, created_at=created_at, run_at=run_at,
        timeout=None if new.timeout is None else float(new.timeout),
        unique_key=new.unique_key, batch_id=new.batch_id,
        meta=json.loads(json.dumps(new.meta)) if new.meta else {},
    )  # fmt: skip


FIELDS = (
    "id", "task", "queue", "tenant", "state", "payload", "priority", "attempts",
    "max_attempts", "created_at", "run_at", "timeout", "started_at", "finished_at",
    "result", "error", "checkpoint", "progress", "progress_message", "unique_key",
    "batch_id", "worker_id", "lease_token", "lease_expires_at", "cancel_requested", "meta",
)  # fmt: skip
"""The fields a script hands back for a job (HMGET, in this order): values only,
half the bytes of HGETALL and nothing to match by name."""

_RUNNING = State.RUNNING.value.encode()
_STATES = {state.value.encode(): state for state in State}


def job_from_values(v: Sequence[bytes | None]) -> Job:
    """A job from its values in ``FIELDS`` order; run for every job a worker
    leases, so the common values (integers, states, empty meta) take short cuts."""
    return decode_job(lambda f: _job(v, f))


def _job(v: Sequence[bytes | None], f: Salvage) -> Job:
    running = v[4] == _RUNNING
    meta = v[25]
    return Job(
        id=_str(v[0]), task=_str(v[1]), queue=_str(v[2]), tenant=_str(v[3]),
        state=f("state", lambda: _state(v[4]), State.DEAD), payload=v[5] or b"",
        priority=_int(v[6]),
        attempts=_int(v[7]), max_attempts=_int(v[8]),
        created_at=from_us(_int(v[9])), run_at=from_us(_int(v[10])),
        timeout=_float(v[11]), started_at=_moment(v[12]), finished_at=_moment(v[13]),
        result_data=v[14], error=f("error", lambda: _error(v[15]), None),
        checkpoint_data=v[16],
        progress=_float(v[17]), progress_message=_text(v[18]), unique_key=_text(v[19]),
        batch_id=_text(v[20]),
        worker_id=_text(v[21]) if running else None,
        lease_token=_text(v[22]) if running else None,
        lease_expires_at=_moment(v[23]) if running else None,
        cancel_requested=running and v[24] == b"1",
        meta={} if meta is None or meta == b"{}" else f("meta", lambda: _object(meta), {}),
    )  # fmt: skip


def _str(raw: bytes | None) -> str:
    if raw is None:
        raise ValueError("a required job field is missing")
    return raw.decode()


def _int(raw: bytes | None) -> int:
    if raw is None:
        raise ValueError("a required job field is missing")
    return int(raw)


def _state(raw: bytes | None) -> State:
    state = _STATES.get(raw) if raw is not None else None
    if state is None:
        raise ValueError(f"not a job state: {raw!r}")
    return state


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


def _moment(raw: bytes | None) -> datetime | None:
    return None if raw is None else from_us(int(raw))


def _float(raw: bytes | None) -> float | None:
    return None if raw is None else float(raw)


def _error(raw: bytes | None) -> ErrorInfo | None:
    return None if raw is None else ErrorInfo.from_dict(json.loads(raw))


_KINDS = {kind.value: kind for kind in EventKind}


def event_from_json(raw: bytes | str) -> Event:
    """Positional, and the kind by lookup: a feed page decodes hundreds."""
    doc: dict[str, Any] = json.loads(raw)
    kind = doc["kind"]
    return Event(int(doc["id"]), doc["job"], doc["tenant"],
                 _KINDS[kind] if kind in _KINDS else EventKind(kind),
                 from_us(int(doc["at"])), doc["data"])  # fmt: skip


# pauses -------------------------------------------------------------------------


def pause_field(tenant: str | None, queue: str | None) -> str:
    """A pause scope as its field in the pauses hash: JSON, so ``None`` stays
    distinct from any name and lease.lua can decode the scope with cjson. Python
    is the only writer, so one scope always has one spelling."""
    return json.dumps([tenant, queue], ensure_ascii=False, separators=(",", ":"))


def pause_from_field(field: bytes, at_us: bytes) -> Pause:
    tenant, queue = json.loads(field)
    return Pause(tenant, queue, from_us(int(at_us)))


# schedules ----------------------------------------------------------------------

SCHEDULE_FIELDS = (
    "id", "tenant", "task", "payload", "cron", "timezone", "queue", "priority",
    "max_attempts", "timeout", "unique", "next_run_at", "last_run_at", "last_job_id",
    "created_at", "updated_at", "meta", "description",
)  # fmt: skip
"""A schedule hash's fields, in the order ``schedule_from_values`` reads them."""

SCHEDULE_KEPT = ("created_at", "updated_at", "last_run_at", "last_job_id")
"""What schedule_upsert.lua answers: the fields it keeps or stamps itself."""


def schedule_rule(schedule: Schedule) -> list[str | bytes]:
    """The fields an upsert replaces, as flat (name, value) pairs; ``next_run_at``
    travels apart since it also moves the schedule in the due index."""
    pairs: list[str | bytes] = [
        "id", schedule.id, "tenant", schedule.tenant, "task", schedule.task,
        "payload", schedule.payload, "cron", schedule.cron, "timezone", schedule.timezone,
        "queue", schedule.queue, "priority", str(schedule.priority),
        "max_attempts", str(schedule.max_attempts), "unique", "1" if schedule.unique else "0",
        "meta", json.dumps(schedule.meta, separators=(",", ":")),
    ]  # fmt: skip
    if schedule.timeout is not None:
        pairs += ["timeout", repr(float(schedule.timeout))]
    if schedule.description is not None:
        pairs += ["description", schedule.description]
    return pairs


def moment_arg(moment: datetime | None) -> str:
    """An optional time as a script argument: microseconds, or ``""`` for none."""
    return "" if moment is None else str(to_us(moment))


def schedule_from_values(v: Sequence[bytes | str | None]) -> Schedule:
    raw = [x.encode() if isinstance(x, str) else x for x in v]
    return Schedule(
        id=_str(raw[0]), tenant=_str(raw[1]), task=_str(raw[2]), payload=raw[3] or b"",
        cron=_str(raw[4]), timezone=_str(raw[5]), queue=_str(raw[6]),
        priority=int(_str(raw[7])), max_attempts=int(_str(raw[8])), timeout=_float(raw[9]),
        unique=raw[10] == b"1", next_run_at=_moment(raw[11]), last_run_at=_moment(raw[12]),
        last_job_id=_text(raw[13]), created_at=_moment(raw[14]), updated_at=_moment(raw[15]),
        meta=json.loads(raw[16] or b"{}"), description=_text(raw[17]),
    )  # fmt: skip


# batches ------------------------------------------------------------------------

BATCH_FIELDS = (
    "id", "tenant", "name", "then", "created_at", "finished_at", "continuation_ids", "meta",
)  # fmt: skip
"""A batch hash's fields, in the order ``batch_from_values`` reads them."""


def new_batch_fields(batch: NewBatch) -> list[str | bytes]:
    """The caller's fields of a new batch as flat (name, value) pairs; the script
    adds the id, tenant, creation time and an empty continuation list."""
    pairs: list[str | bytes] = ["meta", json.dumps(batch.meta, separators=(",", ":"))]
    if batch.name is not None:
        pairs += ["name", batch.name]
    if batch.then is not None:
        pairs += ["then", batch.then]
    return pairs


def batch_from_values(v: Sequence[bytes | None], counts: Sequence[int]) -> Batch:
    """The batch with ``counts`` given per state in ``State`` order."""
    return Batch(
        id=_str(v[0]), tenant=_str(v[1]), name=_text(v[2]), then=v[3],
        created_at=from_us(int(_str(v[4]))), finished_at=_moment(v[5]),
        continuation_ids=json.loads(v[6] or b"[]"), meta=json.loads(v[7] or b"{}"),
        counts={s: int(n) for s, n in zip(State, counts, strict=True) if int(n)},
    )  # fmt: skip


# workers ------------------------------------------------------------------------


def worker_json(info: WorkerInfo) -> str:
    """A worker's report as worker_beat.lua stores it; the script adds
    ``last_seen_at`` from the server clock, so a worker's own clock never shows."""
    return json.dumps(
        {
            "id": info.id, "hostname": info.hostname, "pid": info.pid,
            "queues": list(info.queues), "concurrency": info.concurrency,
            "started_at": to_us(info.started_at), "job_ids": list(info.job_ids),
            "meta": info.meta,
        },
        separators=(",", ":"),
    )  # fmt: skip


def worker_from_json(raw: bytes | str) -> WorkerInfo:
    doc: dict[str, Any] = json.loads(raw)
    return WorkerInfo(
        id=doc["id"], hostname=doc["hostname"], pid=int(doc["pid"]), queues=doc["queues"],
        concurrency=int(doc["concurrency"]), started_at=from_us(int(doc["started_at"])),
        job_ids=doc["job_ids"], last_seen_at=from_us(int(doc["last_seen_at"])),
        meta=doc["meta"],
    )  # fmt: skip


def _object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object: {raw[:60]!r}")
    return value
