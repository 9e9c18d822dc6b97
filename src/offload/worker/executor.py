"""Runs one job and says what happened, as an ``Outcome``; never touches storage.

Keeping the executor free of I/O means every way a job can end (success, error,
timeout, bad payload, unknown task, shutdown, cancellation) is decided here in one
place and recorded elsewhere, by the recorder, through the lifecycle.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import traceback
from contextlib import AsyncExitStack
from typing import Any

from offload.app import App
from offload.depends import Solver
from offload.errors import PayloadError, SerializationError, TaskFailure, UnknownTaskError
from offload.job import (
    Cancelled,
    ErrorInfo,
    Failed,
    Interrupted,
    Job,
    JobContext,
    Outcome,
    Rejected,
    Succeeded,
)
from offload.observability.logs import redact
from offload.task import Task
from offload.worker.threads import JobThreads

# Why the worker cancelled a job's asyncio task: the message passed to cancel().
SHUTDOWN = "offload:shutdown"
CANCEL = "offload:cancel"
LEASE_LOST = "offload:lease-lost"


def error_info(exc: BaseException, task: Task[Any] | None = None) -> ErrorInfo:
    """The error as stored: credentials in its message or traceback (a DSN in a
    connection error) are masked here, once, so no reader of the job (logs, API,
    dashboard, events, CLI) can show them."""
    tb = redact("".join(traceback.format_exception(exc)))
    if isinstance(exc, TaskFailure):
        kind = type(exc.error)
        data = task.encode_error(exc.error) if task is not None else None
        return ErrorInfo(f"{kind.__module__}.{kind.__qualname__}", redact(str(exc)), tb, data)
    return ErrorInfo(f"{type(exc).__module__}.{type(exc).__qualname__}", redact(str(exc)), tb)


class JobExecutor:
    """Turns a leased job into an outcome; one instance per worker."""

    def __init__(self, app: App, threads: JobThreads) -> None:
        self.app = app
        self.threads = threads

    def prepare(self, job: Job, ctx: JobContext) -> tuple[Task[Any], tuple[Any, ...],
                                                          dict[str, Any]] | Rejected:  # fmt: skip
        """Resolve the task and validate the payload, or say why the job cannot run."""
        if job.decode_error is not None:
            message = f"the stored job cannot be decoded: {job.decode_error}"
            return Rejected(ErrorInfo("UndecodableJob", message))
        task: Task[Any] | None = None
        try:
            task = self.app.get_task(job.task)
            args, kwargs = task.decode_payload(job.payload)
            if job.checkpoint_data is not None:
                ctx.checkpoint = task.decode_checkpoint(job.checkpoint_data)
        except (UnknownTaskError, PayloadError, SerializationError) as exc:
            discard = task is not None and not task.dead_letter
            return Rejected(ErrorInfo(type(exc).__name__, redact(str(exc))), discard)
        if task.ctx_param is not None:
            kwargs[task.ctx_param] = ctx
        return task, args, kwargs

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        prepared = self.prepare(job, ctx)
        if isinstance(prepared, Rejected):
            return prepared
        task, args, kwargs = prepared
        middleware = self.app.middleware
        try:
            if middleware.has("before_execute"):
                await middleware.run("before_execute", job, ctx)
            value = await self._invoke(task, args, kwargs, ctx, job.timeout)
        except asyncio.CancelledError as exc:
            return self._stopped(exc, ctx)
        except Exception as exc:
            if ctx.cancel_reason == CANCEL:
                return Cancelled()
            return await self._failed(task, job, exc)
        if ctx.cancel_reason == CANCEL:
            return Cancelled()  # a sync task returned after being asked to stop
        return Succeeded(task.encode_result(value))

    async def _invoke(
        self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        ctx: JobContext, timeout: float | None,
    ) -> Any:  # fmt: skip
        """The task call with its dependencies resolved for this run (and torn
        down after it, seeing its error) and the ``around_execute`` hooks."""
        async with AsyncExitStack() as stack:
            if task.dependencies:
                kwargs = {**kwargs, **await Solver(ctx, stack).solve_all(task.dependencies)}

            async def call_next() -> Any:
                return await self._call(task, args, kwargs, ctx, timeout)

            if self.app.middleware.has("around_execute"):
                return await self.app.middleware.around_execute(ctx, call_next)
            return await call_next()

    async def _call(
        self, task: Task[Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        ctx: JobContext, timeout: float | None,
    ) -> Any:  # fmt: skip
        if task.is_async:
            call = task.fn(*args, **kwargs)
        else:
            fn = functools.partial(contextvars.copy_context().run, task.fn, *args, **kwargs)
            call = self.threads.run(fn)
        if timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError:
            ctx.cancelled.set()  # a sync task's thread cannot be killed; ask it to stop
            raise TimeoutError(f"{task.name} timed out after {timeout:g}s") from None

    def _stopped(self, exc: asyncio.CancelledError, ctx: JobContext) -> Outcome:
        return stopped(exc.args[0] if exc.args else SHUTDOWN, ctx)

    async def _failed(self, task: Task[Any], job: Job, exc: Exception) -> Failed:
        if self.app.middleware.has("on_error"):
            await self.app.middleware.run("on_error", job, exc)
        if isinstance(exc, TaskFailure) and not exc.retry:
            return Failed(error_info(exc, task), None, not task.dead_letter)
        decision = task.retry.decide(job.attempts, job.max_attempts, exc)
        retry_in = decision.retry_in
        return Failed(error_info(exc, task), retry_in, retry_in is None and not task.dead_letter)


def stopped(reason: str, ctx: JobContext) -> Outcome:
    """The outcome of a run the worker stopped, whether the task had started or
    was still waiting for it (a limit, its parents): the same reason ends the
    job the same way."""
    ctx.cancelled.set()
    if reason == CANCEL:
        return Cancelled()
    # Shutdown, a lost lease (the outcome will be refused anyway), or an
    # unexplained cancellation: hand the job back with its checkpoint (none
    # yet, before the task started: the stored one is kept).
    return Interrupted(ctx.encoded_checkpoint())
