"""Code that runs around enqueue and execution: logging, tracing, metrics, alerts.

Hooks may be plain or async methods; each returns nothing except
``before_enqueue``, which may return a changed ``NewJob`` (to add trace headers to
``meta``, say). A hook that raises during enqueue stops the enqueue; during
execution the error is logged and the job's outcome stands, so a broken metrics
exporter cannot fail work.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from offload.job import Job, JobContext, NewJob, Outcome

log = logging.getLogger("offload.middleware")


class Middleware:
    """Subclass and override the hooks you need; the defaults do nothing."""

    def before_enqueue(self, job: NewJob) -> NewJob | Awaitable[NewJob | None] | None:
        return None

    def after_enqueue(self, job: Job) -> Awaitable[None] | None:
        return None

    def before_execute(self, job: Job, ctx: JobContext) -> Awaitable[None] | None:
        return None

    def after_execute(self, job: Job, outcome: Outcome) -> Awaitable[None] | None:
        return None

    def on_error(self, job: Job, error: BaseException) -> Awaitable[None] | None:
        """Called when an attempt raised, before the retry decision is recorded."""
        return None


async def _call(hook: Any, *args: Any) -> Any:
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class MiddlewareChain:
    """Runs the hooks of every middleware in order; only overridden hooks are
    called, so an app without middleware pays nothing per job."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)
        self._hooks = {name: self._overridden(name) for name in _HOOKS}

    def _overridden(self, name: str) -> tuple[Any, ...]:
        base = getattr(Middleware, name)
        return tuple(
            getattr(m, name) for m in self.middleware if getattr(type(m), name, base) is not base
        )

    def has(self, name: str) -> bool:
        return bool(self._hooks[name])

    async def before_enqueue(self, job: NewJob) -> NewJob:
        for hook in self._hooks["before_enqueue"]:
            job = (await _call(hook, job)) or job
        return job

    async def after_enqueue(self, job: Job) -> None:
        for hook in self._hooks["after_enqueue"]:
            await _call(hook, job)

    async def run(self, name: str, *args: Any) -> None:
        """Run an execution-side hook; its errors are logged, never raised."""
        for hook in self._hooks[name]:
            try:
                await _call(hook, *args)
            except Exception:
                log.exception("middleware hook %s failed", name)


_HOOKS = ("before_enqueue", "after_enqueue", "before_execute", "after_execute", "on_error")
