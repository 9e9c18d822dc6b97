"""``@app.task(checkpoint=Model)`` on every backend: a resumed run gets the model
back, a checkpoint that no longer fits dead-letters the job with a clear error."""

from __future__ import annotations

from pydantic import BaseModel

from offload import App, JobContextOf, State
from offload.testing import drain


class Cursor(BaseModel):
    page: int
    token: str | None = None


async def _interrupt_with(app: App, task_name: str, checkpoint: bytes) -> None:
    """What a worker shut down mid-run leaves: the job queued with its checkpoint."""
    backend = await app.backend()
    [leased] = await backend.job_lease("w-test", ["default"], 1, 30.0)
    assert leased.task == task_name
    assert await backend.job_requeue(leased.lease, checkpoint) is not None


async def test_resumed_run_gets_the_declared_model(app: App) -> None:
    seen: list[Cursor | None] = []

    @app.task(checkpoint=Cursor)
    async def crawl(ctx: JobContextOf[Cursor]) -> int:
        seen.append(ctx.checkpoint)
        start = 0 if ctx.checkpoint is None else ctx.checkpoint.page
        await ctx.save_async(Cursor(page=start + 1, token="t"))
        return start + 1

    job = await crawl.enqueue_async()
    await _interrupt_with(app, crawl.name, b'{"page": 4}')
    await drain(app)
    done = await app.get_job_async(job.id)
    assert seen == [Cursor(page=4)]
    assert (done.state, done.result) == (State.SUCCEEDED, 5)
    assert done.checkpoint == {"page": 5, "token": "t"}


async def test_a_checkpoint_that_no_longer_fits_dead_letters_the_job(app: App) -> None:
    ran: list[int] = []

    @app.task(checkpoint=Cursor)
    def crawl(ctx: JobContextOf[Cursor]) -> None:
        ran.append(1)

    job = await crawl.enqueue_async()
    await _interrupt_with(app, crawl.name, b'{"offset": "x"}')
    await drain(app)
    done = await app.get_job_async(job.id)
    assert ran == []  # never run from a guessed state
    assert done.state is State.DEAD
    assert done.error is not None
    assert done.error.type == "CheckpointError"
    assert "no longer fits Cursor" in done.error.message
    assert "page" in done.error.message
