"""Code as a user writes it, type-checked with ``mypy --strict`` by the suite
(``files`` in pyproject.toml): the public surface must stay usable without
casts. It is never run.

``assert_type`` pins what the checker infers. Each ``# type: ignore[code]``
marks a call that MUST be rejected: strict mode warns about an ignore that is
not needed, so if ``enqueue`` ever accepted the wrong argument again, mypy
would fail on that line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, assert_type

from pydantic import BaseModel

from offload import (
    App,
    Batch,
    BoundTask,
    Depends,
    Event,
    Job,
    JobContext,
    JobContextOf,
    JobQuery,
    NewJob,
    Pause,
    Schedule,
    State,
    Step,
    Task,
    TaskFailure,
    Workflow,
    chain,
    chord,
    group,
    step,
)

app = App("memory://")


class Receipt(BaseModel):
    total: int


class OverQuota(BaseModel):
    limit: int


class Resize(BaseModel):
    path: str
    width: int


# ctx last: the result is typed, the arguments are checked at run time only.
@app.task(queue="billing", max_attempts=5, concurrency_limit=2, rate_limit="10/s",
          error=OverQuota)  # fmt: skip
async def charge(customer: str, cents: int, ctx: JobContext) -> Receipt:
    await ctx.progress_async(0.5, "charging")
    if cents > 10_000:
        raise TaskFailure(OverQuota(limit=10_000), retry=False)
    return Receipt(total=cents)


# ctx first: the arguments are checked too.
@app.task(queue="mail")
async def send(ctx: JobContext, to: str, retries: int = 1) -> str:
    ctx.progress(1.0)
    return to


@app.task
def report(label: str) -> str:
    return label


@app.task()
def tick() -> None:
    return None


@app.handler(Resize, queue="images")
async def resize(command: Resize) -> int:
    return command.width


@app.handler(Resize, name="resize.sync")
def resize_sync(command: Resize, ctx: JobContext) -> list[str]:
    return [command.path, str(ctx.attempt)]


def typed_tasks(done: Job) -> None:
    assert_type(charge, Task[Receipt])
    assert_type(charge.result_of(done), Receipt)
    assert_type(send.result_of(done), str)
    assert_type(report.result_of(done), str)
    assert_type(tick.result_of(done), None)
    assert_type(resize.result_of(done), int)
    assert_type(resize_sync.result_of(done), list[str])
    assert_type(resize, Task[int, [Resize | Mapping[str, Any]]])


def checked_arguments() -> None:
    assert_type(send.enqueue("a@b.c"), Job)
    assert_type(send.enqueue(to="a@b.c", retries=2), Job)
    assert_type(report.enqueue("x"), Job)
    assert_type(tick.enqueue(), Job)
    assert_type(resize.enqueue(Resize(path="a.png", width=3)), Job)
    assert_type(resize.enqueue({"path": "a.png", "width": 3}), Job)
    assert_type(report.prepare("x"), NewJob)

    send.enqueue(42)  # type: ignore[arg-type]
    send.enqueue("a@b.c", retries="2")  # type: ignore[arg-type]
    send.enqueue()  # type: ignore[call-arg]
    send.enqueue("a@b.c", ctx=None)  # type: ignore[call-arg]
    report.enqueue(1)  # type: ignore[arg-type]
    report.enqueue("x", "y")  # type: ignore[call-arg]
    report.prepare(1)  # type: ignore[arg-type]
    tick.enqueue(1)  # type: ignore[call-arg]
    resize.enqueue("a.png")  # type: ignore[arg-type]
    resize_sync.enqueue(Receipt(total=1))  # type: ignore[arg-type]


def options_keep_the_types(done: Job) -> None:
    urgent = send.options(queue="urgent", delay=5, tenant="acme")
    high: BoundTask[str, [str]] = report.options(queue="high")
    assert_type(high.enqueue("x"), Job)
    assert_type(urgent.enqueue("a@b.c"), Job)
    assert_type(urgent.options(priority=3).task.result_of(done), str)
    urgent.enqueue(42)  # type: ignore[arg-type]
    urgent.prepare(42)  # type: ignore[arg-type]
    send.options(queue=1)  # type: ignore[arg-type]
    send.options(queu="urgent")  # type: ignore[call-arg]
    app.dispatch(Resize(path="a.png", width=1), tenant="acme", priority=2)
    app.dispatch(Resize(path="a.png", width=1), tenant=3)  # type: ignore[arg-type]


async def workflows(done: Job) -> None:
    after = send.options(depends_on=[done, "some-id"], on_parent_failure="run")
    assert_type(after.enqueue("a@b.c"), Job)
    send.options(on_parent_failure="sometimes")  # type: ignore[arg-type]
    send.options(depends_on=[1])  # type: ignore[list-item]
    flow: Workflow = await app.workflow_async(
        chain(report.prepare("a"), group(report.prepare("b"), report.prepare("c")))
    )
    joined = chord([report.prepare("x")], report.prepare("all"))
    graph: dict[str, NewJob | Step] = {
        "a": report.prepare("a"),
        "b": step(report.prepare("b"), after=["a"]),
    }
    assert_type(app.workflow(graph).state, str)
    assert_type(app.workflow(joined).jobs, dict[str, Job])
    assert_type(app.cancel_workflow(flow.id), Workflow)


async def async_surface() -> None:
    job: Job = await charge.enqueue_async("acme", 500)
    assert_type(await send.enqueue_async("a@b.c"), Job)
    await send.enqueue_async(b"a@b.c")  # type: ignore[arg-type]
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


def sync_twins(job: Job) -> None:
    assert_type(app.get_job(job.id), Job)
    assert_type(app.list_jobs(JobQuery(limit=5)), list[Job])
    assert_type(app.events(job.id), list[Event])
    assert_type(app.pause(queue="mail"), Pause)
    assert_type(app.pauses(), list[Pause])
    assert_type(app.resume(queue="mail"), bool)
    assert_type(app.batch([report.prepare("a")], then=[tick.prepare()], name="b"), Batch)
    assert_type(app.batches(unfinished=True), list[Batch])
    assert_type(app.cancel_batch("b"), Batch)
    assert_type(app.batch_append("b", [report.prepare("c")]), list[Job])
    assert_type(app.schedule("s", tick, "* * * * *", unique=True), Schedule)
    assert_type(app.schedules(), list[Schedule])
    assert_type(app.get_schedule("s"), Schedule)
    app.schedule("s", tick, "* * * * *", timezon="UTC")  # type: ignore[call-arg]
    app.batch([report.prepare("a")], tenant=None)  # type: ignore[arg-type]
    app.close()


# Dependencies and typed checkpoints (offload.depends, checkpoint=Model) ------------


class Conn:
    def query(self) -> int:
        return 1


def get_conn() -> Conn:
    return Conn()


class Cursor(BaseModel):
    page: int


@app.task(checkpoint=Cursor)
async def crawl(
    ctx: JobContextOf[Cursor], site: str, conn: Annotated[Conn, Depends(get_conn)] = Depends()
) -> int:
    start = ctx.checkpoint.page if ctx.checkpoint is not None else conn.query()
    await ctx.save_async(Cursor(page=start + 1))
    ctx.save(Cursor(page=2))
    return start


@app.task
def count(site: str, conn: Conn = Depends(get_conn)) -> int:
    return conn.query()


def dependencies_are_not_arguments() -> None:
    crawl.enqueue("example.org")  # the dependency needs no argument
    count.enqueue(site="example.org")
    crawl.enqueue(42)  # type: ignore[arg-type]


def checkpoints_are_typed(ctx: JobContextOf[Cursor]) -> None:
    assert_type(ctx.checkpoint, Cursor | None)
    ctx.save(3)  # type: ignore[arg-type]
