"""What each transition records: the one place an event's data is built.

A backend appends ``Event.data`` as two parts. The part the caller knows (the
error of a failed attempt, why a start was snoozed, a progress report) is built
here and handed to the backend as it is: SQL parameters, Lua arguments, a dict.
The part only the backend knows inside its atomic step (the attempt counter, the
worker holding the lease, the new due time) is named by the transition's
``stamps`` and rendered by ``stamped`` below, or by the SQL/Lua twin of it that a
server-side backend keeps next to its statements and the contract suite pins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from offload.job import EVERY_TENANT, ErrorInfo
from offload.lifecycle import Stamp, Transition

EventData = dict[str, Any]

LEASE_EXPIRED = ErrorInfo("LeaseExpired", "lease expired on the last attempt")
"""The error a job dies with when its lease ran out on its last attempt."""


def failure(error: ErrorInfo) -> EventData:
    """Data of ``failed``, ``retry_scheduled``, ``dead`` and ``discarded`` for RETRY,
    FAIL, REJECT, DISCARD and DISCARD_REJECTED."""
    return {"error": error.to_dict()}


def snoozed(delay: float, reason: str) -> EventData:
    """Data of ``snoozed``: how long the start was put off, and which limit did it."""
    return {"delay": delay, "reason": reason}


def progress(fraction: float, message: str | None) -> EventData:
    """Data of ``progress``."""
    return {"progress": fraction, "message": message}


def released(parents: dict[str, str]) -> EventData:
    """Data of ``released``: the state each parent ended in (id -> state)."""
    return {"parents": dict(parents)}


def parent_failed(parent_id: str, state: str) -> EventData:
    """Data of the ``cancelled`` event of CANCEL_DEPENDENT: which parent ended how."""
    return {"reason": f"parent {parent_id} {state}", "parent": parent_id, "parent_state": state}


def scope(tenant: str | None, queue: str | None) -> EventData:
    """Data of ``paused`` and ``resumed``: the scope, as a ``Pause`` names it."""
    return {"tenant": tenant, "queue": queue}


def batch_finished(batch_id: str, continuation_ids: Sequence[str]) -> EventData:
    """Data of ``batch_finished``: the batch and the continuations it enqueued."""
    return {"batch_id": batch_id, "continuation_ids": list(continuation_ids)}


def pause_tenant(tenant: str | None) -> str:
    """The tenant a pause's event belongs to: its own, or every tenant's."""
    return EVERY_TENANT if tenant is None else tenant


def stamped(
    transition: Transition,
    handed: EventData,
    *,
    attempts: int,
    worker_id: str | None,
    run_at: datetime,
) -> EventData:
    """The full data of the transition's events, for backends that compute in
    Python: what the caller handed in plus the transition's stamps, in that
    order (stamps win, so a caller cannot forge them)."""
    values: dict[Stamp, Any] = {
        Stamp.ATTEMPT: attempts,
        Stamp.WORKER: worker_id,
        Stamp.RUN_AT: run_at.isoformat(),
    }
    return handed | {stamp.value: values[stamp] for stamp in transition.stamps}
