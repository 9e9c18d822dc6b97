"""offload in one file: python examples/quickstart.py"""

import asyncio

from offload import App, JobContext
from offload.worker import Worker

app = App("sqlite:///quickstart.db")


@app.task(name="send_welcome", max_attempts=5)
async def send_welcome(ctx: JobContext, email: str) -> str:
    await ctx.progress_async(0.5, "rendering")
    return f"welcome mail sent to {email} (attempt {ctx.attempt})"


async def main() -> None:
    job = await send_welcome.enqueue_async("ada@example.com")
    # A worker usually runs apart: offload worker quickstart:app
    await Worker(app, burst=True).run()
    done = await app.get_job_async(job.id)
    print(done.state, done.result)
    await app.close_async()


if __name__ == "__main__":
    asyncio.run(main())
