"""Code that runs around enqueue and execution: logging, tracing, metrics, alerts.

Hooks may be plain or async methods; each returns nothing except
``before_enqueue``, ``before_enqueue_many``, ``before_batch`` and ``before_fire``,
which may return changed jobs (to add trace headers to ``meta``, say). The
``*_many`` hooks see one enqueue call as a whole (a bulk enqueue is one operation
to trace and count), the plain ones each job of it. A hook that raises during
enqueue stops the enqueue; during execution the error is logged and the job's
outcome stands, so a broken metrics exporter cannot fail work.

``around_execute(ctx, call_next)`` is the one hook that may change the outcome
(``001_``'s ``DecorateProcessor``): it runs around the task call, the first
middleware outermost, and returns what the job returns. It may swallow an
exception (return a value instead), replace the result, call ``call_next()``
again to retry within the same attempt, or time the call. Its errors are the
job's errors: that is the point of it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from offload.job import Job, JobContext, NewJob, Outcome, Schedule

log = logging.getLogger("offload.middleware")


class Middleware:
    """Subclass and override the hooks you need; the defaults do nothing."""

    def before_enqueue_many(
        self, jobs: list[NewJob]
    ) -> list[NewJob] | Awaitable[list[NewJob] | None] | None:
        """Called once per enqueue call (one job or a bulk), before ``before_enqueue``."""
        return None

    def after_enqueue_many(self, jobs: list[Job]) -> Awaitable[None] | None:
        """Called once per enqueue call with the stored jobs, after ``after_enqueue``."""
        return None

    def on_enqueue_error(self, jobs: list[NewJob], error: BaseException) -> Awaitable[None] | None:
        """Called when storing the jobs of an enqueue call failed; the error is
        raised to the caller afterwards."""
        return None

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

    def before_batch(
        self, then: list[NewJob]
    ) -> list[NewJob] | Awaitable[list[NewJob] | None] | None:
        """Called when a batch is created, with its continuation jobs, which are
        stored with the batch and enqueued only when it ends; may return changed
        jobs (to record in ``meta`` what caused them)."""
        return None

    def before_fire(
        self, schedule: Schedule, job: NewJob
    ) -> NewJob | Awaitable[NewJob | None] | None:
        """Called when the scheduler fires a schedule, before its job is
        enqueued; may return a changed job (to record the firing in ``meta``)."""
        return None

    async def around_execute(self, ctx: JobContext, call_next: CallNext) -> Any:
        """Wrap the task call; return its value (or another), or raise."""
        return await call_next()


CallNext = Callable[[], Awaitable[Any]]


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
        enqueue_hooks = (hook for name in _ENQUEUE_HOOKS for hook in self._hooks[name])
        self._enqueue_awaits = any(inspect.iscoroutinefunction(h) for h in enqueue_hooks)

    def _overridden(self, name: str) -> tuple[Any, ...]:
        base = getattr(Middleware, name)
        return tuple(
            getattr(m, name) for m in self.middleware if getattr(type(m), name, base) is not base
        )

    def has(self, name: str) -> bool:
        return bool(self._hooks[name])

    def awaits_on_enqueue(self) -> bool:
        """Whether an enqueue hook is ``async def``: a sync enqueue then runs the
        hooks on an event loop, not in the caller's thread."""
        return self._enqueue_awaits

    async def before_enqueue(self, job: NewJob) -> NewJob:
        for hook in self._hooks["before_enqueue"]:
            job = (await _call(hook, job)) or job
        return job

    async def after_enqueue(self, job: Job) -> None:
        for hook in self._hooks["after_enqueue"]:
            await _call(hook, job)

    async def before_enqueue_call(self, jobs: Sequence[NewJob]) -> list[NewJob]:
        """Every hook that runs before one enqueue call stores its jobs."""
        prepared = list(jobs)
        for hook in self._hooks["before_enqueue_many"]:
            prepared = list((await _call(hook, prepared)) or prepared)
        if self._hooks["before_enqueue"]:
            prepared = [await self.before_enqueue(j) for j in prepared]
        return prepared

    async def after_enqueue_call(self, jobs: list[Job]) -> None:
        """Every hook that runs after one enqueue call stored its jobs."""
        if self._hooks["after_enqueue"]:
            for job in jobs:
                await self.after_enqueue(job)
        for hook in self._hooks["after_enqueue_many"]:
            await _call(hook, jobs)

    async def enqueue_failed(self, jobs: list[NewJob], error: BaseException) -> None:
        """Tell the hooks an enqueue failed; their own errors are logged, so the
        caller sees the original one."""
        for hook in self._hooks["on_enqueue_error"]:
            try:
                await _call(hook, jobs, error)
            except Exception:
                log.exception("middleware hook on_enqueue_error failed")

    async def prepare_continuations(self, then: Sequence[NewJob]) -> list[NewJob]:
        """A batch's continuation jobs as every ``before_batch`` hook leaves them."""
        prepared = list(then)
        if prepared:
            for hook in self._hooks["before_batch"]:
                prepared = list((await _call(hook, prepared)) or prepared)
        return prepared

    async def prepare_firing(self, schedule: Schedule, job: NewJob) -> NewJob:
        """A schedule's firing job as every ``before_fire`` hook leaves it."""
        for hook in self._hooks["before_fire"]:
            job = (await _call(hook, schedule, job)) or job
        return job

    async def around_execute(self, ctx: JobContext, call: CallNext) -> Any:
        """Call the task through every ``around_execute``, the first one outermost."""
        for hook in reversed(self._hooks["around_execute"]):
            call = _bind_around(hook, ctx, call)
        return await call()

    async def run(self, name: str, *args: Any) -> None:
        """Run an execution-side hook; its errors are logged, never raised."""
        for hook in self._hooks[name]:
            try:
                await _call(hook, *args)
            except Exception:
                log.exception("middleware hook %s failed", name)


def _bind_around(hook: Any, ctx: JobContext, call_next: CallNext) -> CallNext:
    async def call() -> Any:
        return await hook(ctx, call_next)

    return call


_ENQUEUE_HOOKS = (
    "before_enqueue", "after_enqueue", "before_enqueue_many", "after_enqueue_many",
    "on_enqueue_error",
)  # fmt: skip
_HOOKS = (
    *_ENQUEUE_HOOKS, "before_execute", "after_execute", "on_error", "before_batch",
    "before_fire", "around_execute",
)  # fmt: skip
