"""One callback for every status change of every job (``003_``'s
``OnStatusUpdatedAsync``), built on the backend's event feed.

The feed records every transition wherever it happened: in a worker (start,
success, failure, retry, dead), in the API or CLI (cancel, re-drive) or in lease
recovery (a worker that died). Following it therefore sees what a hook inside
the worker cannot. Delivery is at-least-once: the cursor (the last event id
handled) is saved only after the callback returned, so a crash between the two
hands the same change over again after a restart; callbacks must tolerate a
repeat. A callback that raises stops the round; the same changes come again at
the next one, so a change is never skipped because its handler failed once.

Progress reports are not status changes and are left out (``kinds=`` widens or
narrows that). Every worker of the app follows with its own cursor; give each
one its own ``FileCursor`` path, or run the callback in one worker only (the
feed contract also notes that, where ids come from a sequence, a late commit can
publish an id below one already read: such a change is the rare one a follower
may miss).
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from offload.job import Event
from offload.lifecycle import EventKind, State

if TYPE_CHECKING:
    from offload.app import App

# The state a job is in after an event of this kind (None: no change of state).
STATE_AFTER: dict[EventKind, State | None] = {
    EventKind.ENQUEUED: State.QUEUED, EventKind.SCHEDULED: State.SCHEDULED,
    EventKind.STARTED: State.RUNNING, EventKind.SUCCEEDED: State.SUCCEEDED,
    EventKind.FAILED: None, EventKind.RETRY_SCHEDULED: State.SCHEDULED,
    EventKind.DEAD: State.DEAD, EventKind.CANCEL_REQUESTED: None,
    EventKind.CANCELLED: State.CANCELLED, EventKind.LEASE_EXPIRED: None,
    EventKind.REQUEUED: State.QUEUED, EventKind.RETRIED: State.QUEUED,
    EventKind.PROGRESS: None, EventKind.SNOOZED: None,
}  # fmt: skip
STATUS_KINDS = frozenset(STATE_AFTER) - {EventKind.PROGRESS}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One change handed to the callback: the event and, where the event moves the
    job to a state, that state (``None`` for ``failed``, ``lease_expired``... whose
    next event says where the job went)."""

    event: Event
    state: State | None

    @property
    def job_id(self) -> str:
        assert self.event.job_id is not None  # deliver() hands over job events only
        return self.event.job_id

    @property
    def kind(self) -> EventKind:
        return self.event.kind


StatusCallback = Callable[[StatusChange], Awaitable[None] | None]


class CursorStore(Protocol):
    """Where a follower keeps the id of the last event it handled."""

    async def load(self) -> int: ...

    async def save(self, event_id: int) -> None: ...


class MemoryCursor:
    """A cursor that lives as long as the process: for tests and for callbacks
    that may miss changes made while no worker ran."""

    def __init__(self, start: int = 0) -> None:
        self.value = start

    async def load(self) -> int:
        return self.value

    async def save(self, event_id: int) -> None:
        self.value = event_id


class FileCursor:
    """A cursor in a small JSON file, replaced atomically, so a restarted worker
    resumes where it stopped. One file per follower: two workers following with
    one file would each hand every change over (still at-least-once, twice)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def load(self) -> int:
        try:
            return int(json.loads(self.path.read_text())["after"])
        except FileNotFoundError:
            return 0

    async def save(self, event_id: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as out:
            json.dump({"after": event_id}, out)
        os.replace(tmp, self.path)


@dataclass(frozen=True, slots=True)
class StatusFollower:
    """A registered callback: what ``app.on_status_change`` records and a worker
    runs as a ``StatusWatch`` service."""

    callback: StatusCallback
    cursor: CursorStore
    tenant: str | None = None
    kinds: frozenset[EventKind] = STATUS_KINDS
    interval: float = 1.0

    async def deliver(self, events: list[Event]) -> None:
        for event in events:
            if event.kind in self.kinds and event.job_id is not None:
                result = self.callback(StatusChange(event, STATE_AFTER.get(event.kind)))
                if inspect.isawaitable(result):
                    await result


def follow(
    app: App,
    callback: StatusCallback,
    *,
    cursor: CursorStore | None = None,
    tenant: str | None = None,
    kinds: Collection[EventKind] | None = None,
    interval: float = 1.0,
) -> StatusFollower:
    follower = StatusFollower(
        callback, cursor or MemoryCursor(), tenant,
        STATUS_KINDS if kinds is None else frozenset(kinds), interval,
    )  # fmt: skip
    app.status_followers.append(follower)
    return follower


__all__ = [
    "STATUS_KINDS", "CursorStore", "FileCursor", "MemoryCursor", "StatusCallback",
    "StatusChange", "StatusFollower", "follow",
]  # fmt: skip
