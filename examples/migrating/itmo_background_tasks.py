"""From Itmo.Dev.Platform.BackgroundTasks (002): typed metadata (a checkpoint that
survives a shutdown), a typed result and a typed error.

Run: ``python -m examples.migrating.itmo_background_tasks``
"""

import asyncio

from pydantic import BaseModel

from offload import App, JobContextOf, TaskFailure
from offload.testing import drain

app = App("memory://")


class Metadata(BaseModel):  # WithMetadata<TestBackgroundTaskMetadata>
    page_token: int = 0


class Result(BaseModel):  # WithResult<TestBackgroundTaskResult>
    pages: int


class EmptyError(BaseModel):  # WithError<EmptyError>
    reason: str


@app.task(checkpoint=Metadata, error=EmptyError)
async def export(ctx: JobContextOf[Metadata], pages: int) -> Result:
    meta = ctx.checkpoint or Metadata()
    if pages < 0:
        raise TaskFailure(EmptyError(reason="nothing to export"), retry=False)
    for token in range(meta.page_token, pages):
        # ... commit the page, then record where to resume (idempotency, as in 002)
        await ctx.save_async(Metadata(page_token=token + 1))
    return Result(pages=pages)


async def main() -> str:
    job = await export.enqueue_async(3)
    await drain(app)
    done = await app.get_job_async(job.id)
    await app.close_async()
    return f"{done.state.value}: {export.result_of(done)} checkpoint={done.checkpoint}"


if __name__ == "__main__":
    print(asyncio.run(main()))
