"""The tasks every fault scenario runs, registered on any App: each one writes
its start and end to the ledger, so the checker sees every execution, including
the ones a fault cut short. Their behaviour is set by the job's attempt and by
environment variables, so one worker program serves every scenario."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from offload import App, Job, JobContext
from offload.job import Outcome
from offload.middleware import Middleware
from tests.faults.ledger import Ledger


def ledger_from_env() -> Ledger:
    return Ledger(Path(os.environ["FAULT_LEDGER"]))


class CrashAfterReturn(Middleware):
    """Scenario 2: the process dies after the task returned and before its
    completion is stored (the recorder runs after this hook)."""

    def after_execute(self, job: Job, outcome: Outcome) -> None:
        if job.task == "f.crash_after" and job.attempts == 1:
            ledger_from_env().fault("crash", pid=os.getpid(), job=job.id)
            os._exit(3)


def register(app: App, ledger: Ledger) -> None:  # noqa: C901 - one place for every task
    """Every ``f.*`` task on ``app``; a long list of small functions on purpose,
    so the worker program and the in-process scenarios share them exactly."""
    work = float(os.environ.get("FAULT_WORK", "0.01"))

    async def run(ctx: JobContext, body: Any) -> Any:
        ledger.start(ctx.job.id, ctx.attempt)
        outcome = "abandoned"
        try:
            value = await body()
            outcome = "ok"
            return value
        except asyncio.CancelledError:
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            ledger.end(ctx.job.id, ctx.attempt, outcome)

    @app.task(name="f.record")
    async def record(ctx: JobContext) -> int:
        async def body() -> int:
            await asyncio.sleep(work)
            return ctx.attempt

        result: int = await run(ctx, body)
        return result

    @app.task(name="f.hang_once")
    async def hang_once(ctx: JobContext) -> str:
        async def body() -> str:
            if ctx.attempt == 1:
                _mark(ctx)
                await asyncio.Event().wait()
            return "second time lucky"

        result: str = await run(ctx, body)
        return result

    @app.task(name="f.crash_after")
    async def crash_after(ctx: JobContext) -> int:
        async def body() -> int:
            return ctx.attempt

        result: int = await run(ctx, body)
        return result

    @app.task(name="f.resumable")
    async def resumable(ctx: JobContext) -> int:
        async def body() -> int:
            if ctx.checkpoint is None:
                await ctx.save_async({"step": 5})
                _mark(ctx)
                await asyncio.Event().wait()
            return int(ctx.checkpoint["step"])

        result: int = await run(ctx, body)
        return result

    @app.task(name="f.short")
    async def short(ctx: JobContext) -> str:
        async def body() -> str:
            _mark(ctx)
            await asyncio.sleep(0.5)
            return "finished in grace"

        result: str = await run(ctx, body)
        return result

    @app.task(name="f.poison")
    async def poison(ctx: JobContext) -> None:
        ledger.start(ctx.job.id, ctx.attempt)
        ledger.fault("poison", pid=os.getpid(), job=ctx.job.id)
        os._exit(1)

    @app.task(name="f.raises", max_attempts=3)
    async def raises(ctx: JobContext) -> None:
        async def body() -> None:
            raise RuntimeError(f"attempt {ctx.attempt} failed on purpose")

        await run(ctx, body)

    @app.task(name="f.hang", timeout=1.0)
    def hang(ctx: JobContext) -> None:
        # Its thread outlives the timeout (a thread cannot be stopped): the
        # ledger's end is when it really stopped, so I2 sees the true span.
        ledger.start(ctx.job.id, ctx.attempt)
        try:
            time.sleep(float(os.environ.get("FAULT_HANG", "3600")))
        finally:
            ledger.end(ctx.job.id, ctx.attempt, "hung")

    @app.task(name="f.big")
    async def big(blob: str) -> int:
        """Never runs: the soak's oversized enqueue (scenario 15) is refused."""
        return len(blob)


def _mark(ctx: JobContext) -> None:
    """A file saying this attempt is running, for the test to wait on."""
    folder = os.environ.get("FAULT_MARKS")
    if folder:
        (Path(folder) / f"{ctx.job.id}.{ctx.attempt}").touch()
