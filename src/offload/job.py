"""Plain data that crosses the layers: jobs, events, leases, outcomes, contexts.

Nothing here does I/O. Payloads, results and checkpoints stay as the serializer's
bytes inside a ``Job`` so that a backend never needs to understand them and an
undecodable payload surfaces in the worker, where it can be dead-lettered with its
reason instead of crashing a query.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from offload._sync import run_or_schedule
from offload.errors import TransitionError, UsageError
from offload.lifecycle import EventKind, State

if TYPE_CHECKING:
    from offload.serializer import Serializer

T = TypeVar("T")

DEFAULT_TENANT = "default"
DEFAULT_QUEUE = "default"
# The tenant of an event no single tenant owns (a pause of everything, or of a
# queue of every tenant): every tenant's feed carries it.
EVERY_TENANT = ""
# Set to ``True`` in ``Job.meta`` at enqueue for a task declared with
# ``dead_letter=False``: lease recovery, which knows no tasks, reads it there.
DISCARD_META = "discard"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why an attempt failed, kept on the job and in its events."""

    type: str
    message: str
    traceback: str | None = None
    # The typed error a task raised with ``TaskFailure`` (JSON), if any.
    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type, "message": self.message, "traceback": self.traceback}
        if self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        return cls(str(data["type"]), str(data["message"]), data.get("traceback"),
                   data.get("data"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job as the caller asks for it, before a backend has stored it.

    ``delay`` is relative so that the backend can add it to its own clock (a
    worker or client with a skewed clock then cannot move a job's due time);
    ``run_at`` wins when both are given.
    """

    id: str
    task: str
    payload: bytes
    queue: str = DEFAULT_QUEUE
    tenant: str = DEFAULT_TENANT
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    delay: float = 0.0
    run_at: datetime | None = None
    unique_key: str | None = None
    batch_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # Parents this job waits for (job ids), and what a parent that ends dead or
    # cancelled does to it: "cancel" it (the default) or "run" it anyway. The
    # app stores both in ``meta`` (offload.dependencies); backends never read them.
    depends_on: tuple[str, ...] = ()
    on_parent_failure: str = "cancel"


@dataclass(slots=True)
class Job:
    """One requested execution of a task, as stored."""

    id: str
    task: str
    queue: str
    tenant: str
    state: State
    payload: bytes
    priority: int
    attempts: int
    max_attempts: int
    created_at: datetime
    run_at: datetime
    timeout: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result_data: bytes | None = None
    error: ErrorInfo | None = None
    checkpoint_data: bytes | None = None
    progress: float | None = None
    progress_message: str | None = None
    unique_key: str | None = None
    batch_id: str | None = None
    worker_id: str | None = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    serializer: Serializer | None = field(default=None, repr=False, compare=False)
    # Set on a job an enqueue returned without storing it: the id existed, or a
    # live job of the tenant held the unique key (River's UniqueSkippedAsDuplicate).
    # Not stored: a job read back later says False.
    duplicate: bool = field(default=False, compare=False)
    # Set when a stored field could not be decoded (``decode_job``): the job is
    # shown as far as it could be read, and a worker that leases it rejects it
    # to the dead letter with this reason instead of running it.
    decode_error: str | None = field(default=None, compare=False)

    @property
    def ended(self) -> bool:
        return self.state.ended

    @property
    def depends_on(self) -> list[str]:
        """Ids of the parents this job waited (or waits) for."""
        found = self.meta.get("depends_on")
        return [str(p) for p in found] if isinstance(found, list) else []

    @property
    def lease(self) -> Lease:
        if self.lease_token is None:
            raise TransitionError(f"job {self.id} is not leased")
        return Lease(self.id, self.lease_token)

    @property
    def result(self) -> Any:
        """The task's return value, decoded; ``None`` until it succeeded."""
        return None if self.result_data is None else self._codec().loads(self.result_data)

    @property
    def checkpoint(self) -> Any:
        return None if self.checkpoint_data is None else self._codec().loads(self.checkpoint_data)

    @property
    def arguments(self) -> Any:
        """The stored payload, decoded (keyword arguments of the task)."""
        return self._codec().loads(self.payload)

    def _codec(self) -> Serializer:
        if self.serializer is not None:
            return self.serializer
        from offload.serializer import JSON

        return JSON


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that a worker owns a running job: a backend refuses a transition
    on a running job unless the token matches the one it handed out."""

    job_id: str
    token: str


class CancelOutcome(StrEnum):
    """What a cancel request did, which the job's state alone cannot tell: a job
    that is ``cancelled`` may have been cancelled now or long before."""

    CANCELLED = "cancelled"  # it was waiting and is cancelled now
    REQUESTED = "requested"  # it is running: its worker was asked to stop it
    ENDED = "ended"  # it had already ended; nothing changed


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A cancel request's answer: the job as it is now and what happened."""

    job: Job
    outcome: CancelOutcome


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """What a heartbeat learned: leases it could not renew (another worker or the
    recoverer took the job) and jobs whose cancellation was requested."""

    lost: frozenset[str] = frozenset()
    cancel_requested: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DayCount:
    """How many jobs of one queue ended one UTC day with one outcome (``succeeded``,
    ``cancelled`` or ``dead``): the unit of all-time statistics, kept when
    the jobs themselves are purged."""

    queue: str
    day: date
    outcome: State
    count: int


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded transition (or progress report) of one job, or a change of
    control (``lifecycle.CONTROL_KINDS``: a pause, a resume, a finished batch)
    with ``job_id`` ``None`` and its scope in ``data``. Both share one feed, so a
    stream learns of either in order, from one cursor."""

    id: int
    job_id: str | None
    tenant: str
    kind: EventKind
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters for listing jobs; ``None`` means any. Newest first, paged by id."""

    tenant: str | None = None
    states: frozenset[State] | None = None
    queue: str | None = None
    task: str | None = None
    before_id: str | None = None
    limit: int = 50
    batch_id: str | None = None


# Orchestration records: pauses, schedules, batches. Plain data like the job.


@dataclass(frozen=True, slots=True)
class Pause:
    """Leasing stopped for a scope: ``tenant`` and ``queue`` both ``None`` pause
    everything; one of them set pauses that tenant or that queue (of every
    tenant); both set pause one queue of one tenant. Running jobs go on."""

    tenant: str | None = None
    queue: str | None = None
    at: datetime | None = None

    def covers(self, tenant: str, queue: str) -> bool:
        return (self.tenant is None or self.tenant == tenant) and (
            self.queue is None or self.queue == queue
        )


@dataclass(slots=True)
class Schedule:
    """A cron rule that enqueues a job of ``task`` with ``payload``.

    ``next_run_at`` is computed by the caller from the rule (backends never parse
    cron) and is always a whole second, so every backend compares it exactly;
    ``None`` means the rule fires no more. ``(tenant, id)`` names a schedule."""

    id: str
    task: str
    payload: bytes
    cron: str
    next_run_at: datetime | None
    tenant: str = DEFAULT_TENANT
    timezone: str = "UTC"
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    unique: bool = False
    last_run_at: datetime | None = None
    last_job_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    description: str | None = None  # for people reading schedule lists (004's Scope)


@dataclass(slots=True)
class WorkerInfo:
    """A worker process as it last reported itself; ``last_seen_at`` is set by
    the backend. A worker that stops reporting drops out of listings."""

    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    job_ids: list[str] = field(default_factory=list)
    last_seen_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch to create. ``then`` is the serialized list of continuation jobs,
    opaque to the backend: the app stores it and reads it back when the batch
    ends, so a continuation survives the process that created the batch."""

    id: str
    tenant: str = DEFAULT_TENANT
    name: str | None = None
    then: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Batch:
    """A stored batch with its jobs counted per state at read time, so the
    counts always equal the states of its jobs."""

    id: str
    tenant: str
    created_at: datetime
    name: str | None = None
    then: bytes | None = None
    finished_at: datetime | None = None
    continuation_ids: list[str] = field(default_factory=list)
    counts: dict[State, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ended(self) -> bool:
        """Every job has ended (and there is at least one)."""
        return self.total > 0 and all(s.ended for s, n in self.counts.items() if n)


# Outcomes: what the executor decided; the recorder turns each into a transition.


@dataclass(frozen=True, slots=True)
class Succeeded:
    result: bytes | None


@dataclass(frozen=True, slots=True)
class Failed:
    """``retry_in`` is seconds until the next attempt, or ``None`` for dead."""

    error: ErrorInfo
    retry_in: float | None
    discard: bool = False  # out of attempts and the task keeps no dead letter


@dataclass(frozen=True, slots=True)
class Rejected:
    """The job could not even start: unknown task, undecodable or invalid payload."""

    error: ErrorInfo
    discard: bool = False  # its task keeps no dead letter


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Shutdown stopped the job; it goes back to queued with its checkpoint."""

    checkpoint: bytes | None


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason: str = "cancelled"


@dataclass(frozen=True, slots=True)
class Snoozed:
    """A limit refused the start: run again after ``delay`` seconds, attempt not counted."""

    delay: float
    reason: str


Outcome = Succeeded | Failed | Rejected | Interrupted | Cancelled | Snoozed


class Reporter(Protocol):
    """What a running job may write while it runs; the worker provides it."""

    async def save(self, job: Job, checkpoint: bytes | None, progress: float | None,
                   message: str | None) -> None: ...  # fmt: skip


# The type of a task's checkpoint (``@app.task(checkpoint=Model)``).
CheckpointT = TypeVar("CheckpointT")


_CANCELLED_LOCK = threading.Lock()


class JobContextOf(Generic[CheckpointT]):
    """Handed to a task that asks for it: who it is, and how to report as it goes.

    ``JobContextOf[Model]`` types ``checkpoint`` and ``save`` for a task declared
    with ``checkpoint=Model``; plain ``JobContext`` is ``JobContextOf[Any]``. Two
    names rather than a defaulted parameter because a parameter typed
    ``JobContext[Any]`` would make type checkers give up on ``@app.task``'s
    overloads (an argument holding ``Any`` that matches two of them types the
    task ``Any``), while ``JobContext`` itself holds no ``Any``. ``state`` is
    what the app's lifespan yielded in this worker process (``None`` without).

    ``cancelled`` is a ``threading.Event`` so that a sync task running in a thread
    can poll it; async tasks are cancelled by their worker directly.
    """

    __slots__ = (
        "_cancelled", "_encode", "_loop", "_reporter", "cancel_reason", "checkpoint", "job",
        "parents", "state",
    )  # fmt: skip

    def __init__(
        self,
        job: Job,
        reporter: Reporter | None = None,
        encode: Callable[[Any], bytes] | None = None,
        checkpoint: CheckpointT | None = None,
        state: Any = None,
    ) -> None:
        self.job = job
        self.state = state
        # Made on first use: a threading.Event (a Condition and two locks) per
        # job was 8% of a worker's time on no-op jobs, and most jobs never look.
        self._cancelled: threading.Event | None = None
        # Why ``cancelled`` was set (the worker's reason string); a sync task that
        # returns after a cancel request is then recorded as cancelled.
        self.cancel_reason: str | None = None
        self.checkpoint: CheckpointT | None = checkpoint
        # The jobs this one depended on, by id, as they ended: the worker fills it
        # in before the task starts (``task.result_of(ctx.parents[id])``).
        self.parents: dict[str, Job] = {}
        self._reporter = reporter
        self._encode = encode
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def cancelled(self) -> threading.Event:
        """Set when the worker asks this job to stop; the lock makes the task's
        thread and the worker's loop agree on one event when both ask first."""
        event = self._cancelled
        if event is None:
            with _CANCELLED_LOCK:
                if self._cancelled is None:
                    self._cancelled = threading.Event()
                event = self._cancelled
        return event

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @property
    def batch(self) -> dict[str, Any] | None:
        """For a batch's continuation: the batch's id, name, total and counts
        per state when it ended."""
        value = self.job.meta.get("batch")
        return value if isinstance(value, dict) else None

    async def save_async(
        self,
        checkpoint: CheckpointT | None = None,
        progress: float | None = None,
        message: str | None = None,
    ) -> None:
        """Persist a checkpoint and/or progress; a resumed run receives the checkpoint."""
        if checkpoint is not None:
            self.checkpoint = checkpoint
        if self._reporter is None:
            return
        data = (
            None
            if self.checkpoint is None or self._encode is None
            else self._encode(self.checkpoint)
        )
        await self._reporter.save(self.job, data, progress, message)

    async def progress_async(self, fraction: float, message: str | None = None) -> None:
        await self.save_async(None, fraction, message)

    def save(self, checkpoint: CheckpointT | None = None, progress: float | None = None,
             message: str | None = None) -> None:  # fmt: skip
        """Sync twin for tasks running in the worker's thread pool."""
        self._call(self.save_async(checkpoint, progress, message))

    def progress(self, fraction: float, message: str | None = None) -> None:
        self._call(self.progress_async(fraction, message))

    def encoded_checkpoint(self) -> bytes | None:
        """The checkpoint as the task stores it, for a run handed back unfinished."""
        if self.checkpoint is None or self._encode is None:
            return None
        return self._encode(self.checkpoint)

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            coro.close()
            raise UsageError("JobContext.save/progress needs a running worker")
        run_or_schedule(self._loop, coro)


class JobContext(JobContextOf[Any]):
    """The job context of a task without a declared checkpoint type."""

    __slots__ = ()


class Salvage:
    """Decodes the risky fields of a stored job one at a time, so one broken
    field (``meta`` that is not JSON, a state no version of offload wrote)
    costs that field, not the whole row, and never the rest of a lease."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, name: str, decode: Callable[[], T], fallback: T) -> T:
        try:
            return decode()
        except Exception as exc:  # any decoder may raise anything on bad bytes
            self.problems.append(f"{name}: {type(exc).__name__}: {exc}")
            return fallback


class _Direct(Salvage):
    """Reads every field directly: a failure sends the row to a real ``Salvage``."""

    def __call__(self, name: str, decode: Callable[[], T], fallback: T) -> T:
        return decode()


_DIRECT = _Direct()


def decode_job(build: Callable[[Salvage], Job]) -> Job:
    """The job ``build`` reads from a row, with ``decode_error`` set when a
    field had to be replaced; every backend's job decoder goes through here.

    Almost every row decodes whole, so ``build`` first runs with each field read
    directly, and only a row that fails is read again through ``Salvage``, one
    field at a time (a page of jobs in a listing or a lease reads faster)."""
    try:
        return build(_DIRECT)
    except Exception:  # any decoder may raise anything on bad bytes
        pass
    salvage = Salvage()
    job = build(salvage)
    if salvage.problems:
        job.decode_error = "; ".join(salvage.problems)
    return job
