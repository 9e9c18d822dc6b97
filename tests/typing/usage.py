"""Code as a user writes it, type-checked with ``mypy --strict`` by the suite
(``files`` in pyproject.toml): the public surface must stay usable without
casts or ignores. It is never run."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from offload import App, Batch, Job, JobContext, Schedule, State, TaskFailure
from offload.job import JobQuery

app = App("memory://")


class Receipt(BaseModel):
    total: int


class OverQuota(BaseModel):
    limit: int


@app.task(queue="billing", max_attempts=5, concurrency_limit=2, rate_limit="10/s",
          error=OverQuota)  # fmt: skip
async def charge(customer: str, cents: int, ctx: JobContext) -> Receipt:
    await ctx.progress_async(0.5, "charging")
    if cents > 10_000:
        raise TaskFailure(OverQuota(limit=10_000), retry=False)
    return Receipt(total=cents)


@app.task
def report(label: str) -> str:
    return label


async def main() -> None:
    job: Job = await charge.enqueue_async("acme", 500)
    again: Job = charge.options(queue="urgent", delay=5, tenant="acme").enqueue("acme", 1)
    done = await app.get_job_async(job.id, tenant="acme")
    receipt: Receipt = charge.result_of(done)
    failure: object = charge.error_of(done)
    state: State = again.state
    batch: Batch = await app.batch_async(
        [charge.prepare("acme", n) for n in range(3)], then=[report.prepare("done")]
    )
    nightly: Schedule = await app.schedule_async(
        "nightly", report, "0 3 * * *", args=("nightly",), timezone="Europe/Berlin"
    )
    due: datetime | None = nightly.next_run_at
    await app.pause_async(queue="billing")
    resumed: bool = await app.resume_async(queue="billing")
    jobs: list[Job] = await app.list_jobs_async(JobQuery(batch_id=batch.id))
    print(receipt, failure, state, due, resumed, len(jobs))
