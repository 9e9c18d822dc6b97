"""The job state machine: the only place that says which state change is legal.

Backends never decide a transition on their own: each backend method names one of
the ``Transition`` objects below and applies it atomically, guarded by the states
it may start from (and, for a running job, by the lease token that proves the
caller still owns it). Keeping the table here means a new backend cannot invent a
move the others refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where a job is in its life; a ``str`` so it prints and compares as text."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    DEAD = "dead"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({State.SUCCEEDED, State.CANCELLED, State.DEAD})
WAITING = frozenset({State.SCHEDULED, State.QUEUED})


class EventKind(StrEnum):
    """What one event records; a transition may append more than one."""

    ENQUEUED = "enqueued"
    SCHEDULED = "scheduled"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD = "dead"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    LEASE_EXPIRED = "lease_expired"
    REQUEUED = "requeued"
    RETRIED = "retried"
    PROGRESS = "progress"
    SNOOZED = "snoozed"
    RELEASED = "released"
    DISCARDED = "discarded"
    # Not transitions of a job: changes of control that streams follow in the
    # same feed (``Event.job_id`` is ``None``; the scope or batch is in the data).
    PAUSED = "paused"
    RESUMED = "resumed"
    BATCH_FINISHED = "batch_finished"


CONTROL_KINDS = frozenset({EventKind.PAUSED, EventKind.RESUMED, EventKind.BATCH_FINISHED})
"""Event kinds of no job: a pause, a resume, a batch whose continuations fired."""


class Attempts(StrEnum):
    """What a transition does to the job's attempt counter."""

    KEEP = "keep"
    COUNT = "count"  # one more: the job starts an attempt
    GIVE_BACK = "give_back"  # one less (never below 0): the attempt did not really run
    RESET = "reset"  # back to 0: a re-driven job starts over


class RunAt(StrEnum):
    """What a transition does to the job's due time; ``AFTER`` adds the seconds
    the caller hands in to the backend's clock, so a skewed worker cannot move it."""

    KEEP = "keep"
    NOW = "now"
    AFTER = "after"


class LeaseEffect(StrEnum):
    """``GRANT`` issues a new token, owner and expiry and sets ``started_at``;
    ``DROP`` clears token, owner and expiry and any pending cancel request."""

    KEEP = "keep"
    GRANT = "grant"
    DROP = "drop"


class ErrorEffect(StrEnum):
    """``SET`` stores the error the caller hands in (for ``EXPIRE_DEAD`` that is
    ``event_data.LEASE_EXPIRED``); ``CLEAR`` forgets the last one."""

    KEEP = "keep"
    SET = "set"
    CLEAR = "clear"


class Stamp(StrEnum):
    """A value of the job that only the backend knows inside its atomic step,
    copied into the data of every event the transition appends.

    ``ATTEMPT`` is the attempt counter after the transition, ``WORKER`` the worker
    holding the lease the transition grants or takes away, ``RUN_AT`` the due time
    after it (ISO 8601, UTC). Everything else in an event's data is built by the
    caller with ``offload.event_data`` and handed to the backend as it is.
    """

    ATTEMPT = "attempt"
    WORKER = "worker"
    RUN_AT = "run_at"


@dataclass(frozen=True, slots=True)
class Transition:
    """One legal move: the states it starts from, where it lands, what it does
    to the job and what it records.

    ``leased`` means the caller must hold the job's current lease token; a
    transition that fails that guard is refused, which is how a worker that lost
    its lease is fenced off. The effect fields are the whole of what a backend
    writes besides ``state``: a backend applies them with the values it is
    handed and decides none of them itself, so a new backend cannot drift.
    ``finished_at`` is set when the target has ended and cleared when a job
    leaves an ended state (``REDRIVE``).
    """

    name: str
    sources: frozenset[State]
    target: State
    events: tuple[EventKind, ...]
    leased: bool = False
    attempts: Attempts = Attempts.KEEP
    run_at: RunAt = RunAt.KEEP
    lease: LeaseEffect = LeaseEffect.KEEP
    error: ErrorEffect = ErrorEffect.KEEP
    stamps: tuple[Stamp, ...] = ()
    stores_result: bool = False
    stores_checkpoint: bool = False

    def allows(self, state: State) -> bool:
        return state in self.sources

    @property
    def sets_finished(self) -> bool:
        return self.target.ended

    @property
    def clears_finished(self) -> bool:
        return not self.target.ended and any(s.ended for s in self.sources)

    @property
    def waits(self) -> bool:
        """The job lands waiting, so it goes (back) into its queue's ready order."""
        return self.target in WAITING


S = State
E = EventKind
A = Attempts
L = LeaseEffect
ERR = ErrorEffect

ENQUEUE = Transition("enqueue", frozenset(), S.QUEUED, (E.ENQUEUED,))
ENQUEUE_LATER = Transition("enqueue_later", frozenset(), S.SCHEDULED, (E.SCHEDULED,))
START = Transition(
    "start", frozenset({S.QUEUED, S.SCHEDULED}), S.RUNNING, (E.STARTED,),
    attempts=A.COUNT, lease=L.GRANT, stamps=(Stamp.ATTEMPT, Stamp.WORKER),
)  # fmt: skip
SUCCEED = Transition(
    "succeed", frozenset({S.RUNNING}), S.SUCCEEDED, (E.SUCCEEDED,),
    leased=True, lease=L.DROP, stores_result=True,
)  # fmt: skip
RETRY = Transition(
    "retry", frozenset({S.RUNNING}), S.SCHEDULED, (E.FAILED, E.RETRY_SCHEDULED),
    leased=True, run_at=RunAt.AFTER, lease=L.DROP, error=ERR.SET,
    stamps=(Stamp.ATTEMPT, Stamp.RUN_AT),
)  # fmt: skip
FAIL = Transition(
    "fail", frozenset({S.RUNNING}), S.DEAD, (E.FAILED, E.DEAD),
    leased=True, lease=L.DROP, error=ERR.SET, stamps=(Stamp.ATTEMPT,),
)  # fmt: skip
# A job whose payload or task cannot be resolved never ran: it goes straight to
# the dead letter with the reason, without a "failed" attempt in between.
REJECT = Transition(
    "reject", frozenset({S.RUNNING}), S.DEAD, (E.DEAD,),
    leased=True, lease=L.DROP, error=ERR.SET,
)  # fmt: skip
# Shutdown hands the job back with its checkpoint; the attempt is not counted.
REQUEUE = Transition(
    "requeue", frozenset({S.RUNNING}), S.QUEUED, (E.REQUEUED,),
    leased=True, attempts=A.GIVE_BACK, run_at=RunAt.NOW, lease=L.DROP, stores_checkpoint=True,
)  # fmt: skip
# A limit (concurrency or rate) refused the start: back to waiting until the
# given time, the attempt not counted, since the job never ran.
SNOOZE = Transition(
    "snooze", frozenset({S.RUNNING}), S.SCHEDULED, (E.SNOOZED,),
    leased=True, attempts=A.GIVE_BACK, run_at=RunAt.AFTER, lease=L.DROP,
)  # fmt: skip
CANCEL_WAITING = Transition("cancel", frozenset(WAITING), S.CANCELLED, (E.CANCELLED,))
# A running job cannot be stopped from outside atomically: the request is recorded
# (a ``cancel_requested`` event, no state change) and its worker, which checks
# often, confirms with CANCEL_RUNNING.
CANCEL_RUNNING = Transition(
    "cancel_running", frozenset({S.RUNNING}), S.CANCELLED, (E.CANCELLED,),
    leased=True, lease=L.DROP,
)  # fmt: skip
EXPIRE = Transition(
    "expire", frozenset({S.RUNNING}), S.QUEUED, (E.LEASE_EXPIRED,),
    run_at=RunAt.NOW, lease=L.DROP, stamps=(Stamp.WORKER, Stamp.ATTEMPT),
)  # fmt: skip
EXPIRE_DEAD = Transition(
    "expire_dead", frozenset({S.RUNNING}), S.DEAD, (E.LEASE_EXPIRED, E.DEAD),
    lease=L.DROP, error=ERR.SET, stamps=(Stamp.WORKER, Stamp.ATTEMPT),
)  # fmt: skip
# A running job whose cancel was requested and whose worker then died (its lease
# ran out) ends cancelled: the request is honoured instead of running it again.
EXPIRE_CANCELLED = Transition(
    "expire_cancelled", frozenset({S.RUNNING}), S.CANCELLED, (E.LEASE_EXPIRED, E.CANCELLED),
    lease=L.DROP, stamps=(Stamp.WORKER, Stamp.ATTEMPT),
)  # fmt: skip
# A task declared with ``dead_letter=False`` whose job fails for the last time (or
# cannot start) is discarded: it ends cancelled, which the dead letter does not
# list, with its error kept and a ``discarded`` event saying why it ended.
DISCARD = Transition(
    "discard", frozenset({S.RUNNING}), S.CANCELLED, (E.FAILED, E.DISCARDED),
    leased=True, lease=L.DROP, error=ERR.SET, stamps=(Stamp.ATTEMPT,),
)  # fmt: skip
# A job of a task without dead letter whose worker died on its last attempt is
# discarded like one whose last attempt raised: the recoverer reads the task's
# choice from the job (``job.DISCARD_META``), since it does not know the task.
EXPIRE_DISCARD = Transition(
    "expire_discard", frozenset({S.RUNNING}), S.CANCELLED, (E.LEASE_EXPIRED, E.DISCARDED),
    lease=L.DROP, error=ERR.SET, stamps=(Stamp.WORKER, Stamp.ATTEMPT),
)  # fmt: skip
DISCARD_REJECTED = Transition(
    "discard_rejected", frozenset({S.RUNNING}), S.CANCELLED, (E.DISCARDED,),
    leased=True, lease=L.DROP, error=ERR.SET,
)  # fmt: skip
REDRIVE = Transition(
    "redrive", frozenset({S.DEAD, S.CANCELLED}), S.QUEUED, (E.RETRIED,),
    attempts=A.RESET, run_at=RunAt.NOW, lease=L.DROP, error=ERR.CLEAR,
)  # fmt: skip

# A dependent waits in ``scheduled`` (not yet due) until every parent has ended;
# then exactly one caller moves it on: RELEASE makes it due now, CANCEL_DEPENDENT
# ends it because a parent ended dead or cancelled. Both start from ``scheduled``
# only, so of callers racing on one dependent, the first wins and the rest change
# nothing (offload.dependencies decides which one applies).
RELEASE = Transition(
    "release", frozenset({S.SCHEDULED}), S.QUEUED, (E.RELEASED,), run_at=RunAt.NOW,
)  # fmt: skip
CANCEL_DEPENDENT = Transition(
    "cancel_dependent", frozenset({S.SCHEDULED}), S.CANCELLED, (E.CANCELLED,),
)  # fmt: skip
DEPENDENCY = frozenset({RELEASE, CANCEL_DEPENDENT})
"""The transitions ``Backend.job_release`` applies."""

ALL: tuple[Transition, ...] = (
    ENQUEUE, ENQUEUE_LATER, START, SUCCEED, RETRY, FAIL, REJECT, REQUEUE, SNOOZE,
    CANCEL_WAITING, CANCEL_RUNNING, EXPIRE, EXPIRE_DEAD, EXPIRE_CANCELLED, REDRIVE, RELEASE,
    CANCEL_DEPENDENT, DISCARD, DISCARD_REJECTED, EXPIRE_DISCARD,
)  # fmt: skip


def count_attempts(effect: Attempts, attempts: int) -> int:
    """The counter after ``effect``: the one rule every Python-side backend uses
    (SQL and Lua backends write the same arithmetic in their statements)."""
    if effect is Attempts.COUNT:
        return attempts + 1
    if effect is Attempts.GIVE_BACK:
        return max(0, attempts - 1)
    if effect is Attempts.RESET:
        return 0
    return attempts
