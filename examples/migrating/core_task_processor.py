"""From Core.TaskProcessor (004): tenants, batches with a continuation, pause and
resume, retries with explicit delays, services resolved for each task.

Run: ``python -m examples.migrating.core_task_processor``
"""

import asyncio
from collections.abc import AsyncIterator

from offload import App, Depends, JobContext
from offload.testing import drain

app = App("memory://")  # options.Redis -> App("redis://localhost:6379/0")
said: list[str] = []


class SomeScopedService:
    async def do_something_async(self, text: str) -> None:
        said.append(text)


async def scoped_service() -> AsyncIterator[SomeScopedService]:
    yield SomeScopedService()  # one per task run, disposed after it, like a DI scope


@app.task(max_attempts=3, retry=[60, 5])  # Retries = 3, OnTaskFailedDelay
async def do_something(text: str, svc: SomeScopedService = Depends(scoped_service)) -> None:
    await svc.do_something_async(text)


@app.task(queue="high")
async def finish(ctx: JobContext) -> str:
    summary = ctx.batch or {}
    return f"batch of {summary.get('total')} done"


async def main() -> str:
    await app.pause_async(tenant="my-tenant")  # pause and resume per tenant
    batch = await app.batch_async(  # EnqueueBatchAsync("default", "my-tenant", ...)
        [do_something.prepare("hello"), do_something.prepare("world")],
        then=[finish.prepare()],  # ContinueWith(..., "high")
        tenant="my-tenant",
    )
    await app.resume_async(tenant="my-tenant")
    await drain(app, queues=["default", "high"])
    done = await app.get_batch_async(batch.id)
    await app.close_async()
    return f"{sorted(said)} finished={done.finished_at is not None}"


if __name__ == "__main__":
    print(asyncio.run(main()))
