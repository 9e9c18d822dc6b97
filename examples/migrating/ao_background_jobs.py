"""From AO.BackgroundJobs (003): a job body (OnExecuteAsync), one status callback
(OnStatusUpdatedAsync) that sees every change, and the job info a client shows.

Run: ``python -m examples.migrating.ao_background_jobs``
"""

import asyncio

from offload import App, JobContext
from offload.status import StatusChange
from offload.testing import drain
from offload.worker.services.status import StatusWatch

app = App("memory://")
changes: list[str] = []


def on_status_updated(change: StatusChange) -> None:  # OnStatusUpdatedAsync
    changes.append(change.kind.value)


follower = app.on_status_change(on_status_updated)  # add cursor=FileCursor(path) to resume


@app.task(queue="zip-builder")
async def build_zip(files: list[str], ctx: JobContext) -> str:  # OnExecuteAsync
    await ctx.progress_async(0.5, "zipping")
    return f"https://files.example/{ctx.job.id}.zip"  # the download link a client shows


async def main() -> str:
    job = await build_zip.enqueue_async(["a.txt", "b.txt"])  # QueueJobAsync
    await drain(app, queues=["zip-builder"])
    # A worker runs the follower as a service; one round here, to print it.
    await StatusWatch(await app.backend(), follower).once()
    done = await app.get_job_async(job.id)  # BackgroundJobInfo
    await app.close_async()
    return f"{done.state.value}: {done.result} after {' > '.join(changes)}"


if __name__ == "__main__":
    print(asyncio.run(main()))
