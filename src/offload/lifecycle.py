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


@dataclass(frozen=True, slots=True)
class Transition:
    """One legal move: the states it starts from, where it lands, what it records.

    ``leased`` means the caller must hold the job's current lease token; a
    transition that fails that guard is refused, which is how a worker that lost
    its lease is fenced off.
    """

    name: str
    sources: frozenset[State]
    target: State
    events: tuple[EventKind, ...]
    leased: bool = False

    def allows(self, state: State) -> bool:
        return state in self.sources


def _t(
    name: str, sources: set[State], target: State, *events: EventKind, leased: bool = False
) -> Transition:
    return Transition(name, frozenset(sources), target, events, leased)


S = State
E = EventKind

ENQUEUE = _t("enqueue", set(), S.QUEUED, E.ENQUEUED)
ENQUEUE_LATER = _t("enqueue_later", set(), S.SCHEDULED, E.SCHEDULED)
START = _t("start", {S.QUEUED, S.SCHEDULED}, S.RUNNING, E.STARTED)
SUCCEED = _t("succeed", {S.RUNNING}, S.SUCCEEDED, E.SUCCEEDED, leased=True)
RETRY = _t("retry", {S.RUNNING}, S.SCHEDULED, E.FAILED, E.RETRY_SCHEDULED, leased=True)
FAIL = _t("fail", {S.RUNNING}, S.DEAD, E.FAILED, E.DEAD, leased=True)
# A job whose payload or task cannot be resolved never ran: it goes straight to
# the dead letter with the reason, without a "failed" attempt in between.
REJECT = _t("reject", {S.RUNNING}, S.DEAD, E.DEAD, leased=True)
# Shutdown hands the job back with its checkpoint; the attempt is not counted.
REQUEUE = _t("requeue", {S.RUNNING}, S.QUEUED, E.REQUEUED, leased=True)
# A limit (concurrency or rate) refused the start: back to waiting until the
# given time, the attempt not counted, since the job never ran.
SNOOZE = _t("snooze", {S.RUNNING}, S.SCHEDULED, E.SNOOZED, leased=True)
CANCEL_WAITING = _t("cancel", set(WAITING), S.CANCELLED, E.CANCELLED)
# A running job cannot be stopped from outside atomically: the request is recorded
# and pushed to its worker, which confirms with CANCEL_RUNNING.
CANCEL_RUNNING = _t("cancel_running", {S.RUNNING}, S.CANCELLED, E.CANCELLED, leased=True)
EXPIRE = _t("expire", {S.RUNNING}, S.QUEUED, E.LEASE_EXPIRED)
EXPIRE_DEAD = _t("expire_dead", {S.RUNNING}, S.DEAD, E.LEASE_EXPIRED, E.DEAD)
REDRIVE = _t("redrive", {S.DEAD, S.CANCELLED}, S.QUEUED, E.RETRIED)

ALL: tuple[Transition, ...] = (
    ENQUEUE, ENQUEUE_LATER, START, SUCCEED, RETRY, FAIL, REJECT, REQUEUE, SNOOZE,
    CANCEL_WAITING, CANCEL_RUNNING, EXPIRE, EXPIRE_DEAD, REDRIVE,
)  # fmt: skip
