"""The typed decorators at run time: ctx first (the form the type checker checks
fully) runs like ctx last, and settings given to ``app.task`` in any spelling
reach the task."""

from __future__ import annotations

from pydantic import BaseModel

from offload import App, JobContext, State
from offload.testing import drain


class Resize(BaseModel):
    path: str
    width: int


async def test_ctx_first_takes_positional_and_keyword_arguments(mem_app: App) -> None:
    @mem_app.task
    async def send(ctx: JobContext, to: str, retries: int = 1) -> str:
        return f"{to}:{retries}:{ctx.attempt}"

    by_position = await send.enqueue_async("a@b.c", 2)
    by_keyword = await send.enqueue_async(to="c@d.e")
    assert by_position.arguments == {"to": "a@b.c", "retries": 2}
    await drain(mem_app)
    done = [await mem_app.get_job_async(j.id) for j in (by_position, by_keyword)]
    assert [send.result_of(j) for j in done] == ["a@b.c:2:1", "c@d.e:1:1"]


async def test_a_handler_may_take_the_context_second(mem_app: App) -> None:
    @mem_app.handler(Resize, name="resize.ctx", queue="images")
    def resize(command: Resize, ctx: JobContext) -> list[str]:
        return [command.path, str(ctx.attempt)]

    job = await resize.enqueue_async(Resize(path="a.png", width=3))
    assert (job.task, job.queue) == ("resize.ctx", "images")
    await drain(mem_app, queues=["images"])
    done = await mem_app.get_job_async(job.id)
    assert (done.state, resize.result_of(done)) == (State.SUCCEEDED, ["a.png", "1"])


def test_settings_reach_the_task_in_every_spelling() -> None:
    app = App("memory://")

    def one(n: int) -> int:
        return n

    def two(n: int) -> int:
        return n

    chained = app.task(queue="high")(name="jobs.one", priority=3)(one)
    # typed as an error (a function and settings at once), still honoured at run time
    direct = app.task(two, queue="low", max_attempts=7)
    assert (chained.name, chained.queue, chained.priority) == ("jobs.one", "high", 3)
    assert (direct.queue, direct.max_attempts) == ("low", 7)
    assert app.get_task("jobs.one") is chained
