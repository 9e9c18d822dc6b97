"""Side loops of a worker, one per file, all of one shape.

A service is a name, an interval and one round of work (``once``); the worker's
``Supervisor`` owns the loop around it: the timing, waking it early, backing off
after a failure, and stopping the worker loudly if a service keeps failing. Each
service therefore holds only what it does, never how it is scheduled or
how its errors are survived.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


class Service(Protocol):
    """One side loop: ``once`` runs every ``interval`` seconds, first at start."""

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float: ...

    async def once(self) -> None: ...


@runtime_checkable
class Wakeable(Protocol):
    """A service that has work to do before its interval is up sets ``woken``;
    the supervisor then runs it at once instead of at the next tick."""

    woken: asyncio.Event


@runtime_checkable
class Closable(Protocol):
    """A service with something to undo when the worker stops (leave a registry)."""

    async def close(self) -> None: ...


__all__ = ["Closable", "Service", "Wakeable"]
