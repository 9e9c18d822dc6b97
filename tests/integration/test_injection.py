"""Dependencies, the app lifespan, around_execute and typed checkpoints, run by a
real worker: what migrating users of DI-built handlers and decorators expect.

No postponed annotations here: the dependencies are local to each test, and an
``Annotated[..., Depends(local_fn)]`` hint must be evaluated where it is written."""

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest

from offload import App, Depends, JobContext, Middleware, PayloadError, State
from offload.depends import Dependency
from offload.errors import ConfigurationError
from offload.testing import drain

# What is tested here happens in the worker, not in storage: two backends suffice.
LOCAL = pytest.mark.parametrize("backend_url", ["memory", "sqlite"], indirect=True)


class Db:
    def __init__(self, log: list[str]) -> None:
        self.log = log


@LOCAL
async def test_dependencies_resolve_per_job_and_generators_tear_down(app: App) -> None:
    log: list[str] = []
    calls: list[str] = []

    def settings() -> dict[str, str]:
        calls.append("settings")
        return {"dsn": "x"}

    async def get_db(
        ctx: JobContext, conf: Annotated[dict[str, str], Depends(settings)]
    ) -> AsyncIterator[Db]:
        log.append(f"open {ctx.job.id[-4:]} {conf['dsn']}")
        yield Db(log)
        log.append("close")

    def get_name(conf: dict[str, str] = Depends(settings)) -> str:
        return "n-" + conf["dsn"]

    @app.task
    async def work(
        n: int,
        db: Db = Depends(get_db),
        name: Annotated[str, Depends(get_name)] = Depends(),
    ) -> str:
        db.log.append(f"run {n}")
        return f"{name}:{n}"

    job = await work.enqueue_async(7)
    assert json.loads(job.payload) == {"n": 7}  # dependencies are never payload
    await drain(app)
    done = await app.get_job_async(job.id)
    assert (done.state, done.result) == (State.SUCCEEDED, "n-x:7")
    assert log == [f"open {job.id[-4:]} x", "run 7", "close"]
    assert calls == ["settings"]  # one call per job, however many ask for it


@LOCAL
async def test_a_dependency_is_not_an_argument(app: App) -> None:
    @app.task
    def work(n: int, db: Db = Depends(lambda: Db([]))) -> int:
        return n

    with pytest.raises(PayloadError, match="'db' is a dependency"):
        await work.enqueue_async(1, db=Db([]))
    with pytest.raises(PayloadError, match="too many positional"):
        await work.enqueue_async(1, 2)  # type: ignore[arg-type]


@LOCAL
async def test_teardown_sees_the_error_and_the_job_fails(app: App) -> None:
    seen: list[str] = []

    def session() -> Iterator[str]:
        try:
            yield "s"
        except ValueError as exc:
            seen.append(f"rollback: {exc}")
            raise

    @app.task(max_attempts=1)
    def boom(s: str = Depends(session)) -> None:
        raise ValueError("bad")

    job = await boom.enqueue_async()
    await drain(app)
    assert (await app.get_job_async(job.id)).state is State.DEAD
    assert seen == ["rollback: bad"]


@LOCAL
async def test_lifespan_runs_once_per_worker_and_feeds_dependencies(backend_url: str) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("start")
        yield {"pool": "POOL"}
        events.append("stop")

    def pool(ctx: JobContext) -> str:
        return str(ctx.state["pool"])

    app = App(backend_url, lifespan=lifespan)
    try:

        @app.task
        def use(i: int, p: str = Depends(pool)) -> str:
            return f"{p}{i}"

        jobs = await use.enqueue_many_async([(1,), (2,), (3,)])
        await drain(app)
        results = [(await app.get_job_async(j.id)).result for j in jobs]
        assert results == ["POOL1", "POOL2", "POOL3"]
        assert events == ["start", "stop"]
    finally:
        await app.close_async()


def test_misdeclared_dependencies_are_clear_errors() -> None:
    app = App("memory://")

    def needs(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="'x' is neither a JobContext nor"):

        @app.task
        def one(v: int = Depends(needs)) -> None: ...

    with pytest.raises(ConfigurationError, match="Depends\\(\\) without a callable"):

        @app.task
        def two(v: int = Depends()) -> None: ...

    assert isinstance(Depends(needs), Dependency)


class Timing(Middleware):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def around_execute(self, ctx: JobContext, call_next: Any) -> Any:
        self.calls.append(f"in {ctx.job.task.rsplit('.', 1)[-1]}")
        try:
            result = await call_next()
        except LookupError:
            return "swallowed"
        except ValueError:
            return await call_next()  # retry within this attempt
        return f"<{result}>"


@LOCAL
async def test_around_execute_can_replace_swallow_and_retry(backend_url: str) -> None:
    timing = Timing()
    app = App(backend_url, middleware=[timing])
    tries: list[int] = []
    try:

        @app.task
        def fine() -> str:
            return "ok"

        @app.task(max_attempts=1)
        def lost() -> str:
            raise KeyError("k")

        @app.task(max_attempts=1)
        def twice() -> str:
            tries.append(1)
            if len(tries) == 1:
                raise ValueError("first")
            return "second"

        jobs = [await t.enqueue_async() for t in (fine, lost, twice)]
        await drain(app)
        done = [await app.get_job_async(j.id) for j in jobs]
        assert [(d.state, d.result) for d in done] == [
            (State.SUCCEEDED, "<ok>"), (State.SUCCEEDED, "swallowed"),
            (State.SUCCEEDED, "second"),
        ]  # fmt: skip
        assert sorted(timing.calls) == ["in fine", "in lost", "in twice"]
    finally:
        await app.close_async()
