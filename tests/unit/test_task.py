"""Tasks: typed payloads checked at enqueue, options, bulk and sync enqueue,
command handlers and typed results."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from offload import App, JobContext, PayloadError, PayloadTooLargeError, Settings, State, Task
from offload.errors import InvalidOptionError, UnknownTaskError
from offload.job import Job, JobQuery


class Resize(BaseModel):
    path: str
    width: int


class Report(BaseModel):
    total: int
    at: datetime


async def _stored(app: App) -> list[Job]:
    return await app.list_jobs_async(JobQuery(limit=1000))


def _send_task(app: App) -> Task[Any]:
    @app.task(name="mail.send")
    async def send(to: str, retries: int = 1) -> str:
        return to

    return send


# typed payloads ------------------------------------------------------------------


async def test_arguments_are_stored_as_typed_keywords(mem_app: App) -> None:
    send = _send_task(mem_app)
    job = await send.enqueue_async("a@b.c", retries=2)
    assert (job.task, job.state, job.queue, job.tenant) == (
        "mail.send", State.QUEUED, "default", "default",
    )  # fmt: skip
    assert job.arguments == {"to": "a@b.c", "retries": 2}
    assert (await mem_app.get_job_async(job.id)).arguments == {"to": "a@b.c", "retries": 2}


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((123,), {}, "to"),
        (("a@b.c",), {"retries": "2"}, "retries"),
        ((), {"retries": 2}, "to"),
        (("a@b.c",), {"cc": "x@y.z"}, "cc"),
        (("a@b.c", 1, "extra"), {}, "too many"),
    ],
    ids=["wrong-type", "no-coercion", "missing", "unknown", "extra-positional"],
)
async def test_bad_arguments_raise_payload_error_at_enqueue_and_store_nothing(
    mem_app: App, args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    send = _send_task(mem_app)
    with pytest.raises(PayloadError, match=field):
        await send.enqueue_async(*args, **kwargs)
    assert await _stored(mem_app) == []


async def test_ctx_parameter_is_not_part_of_the_payload(mem_app: App) -> None:
    @mem_app.task
    def work(n: int, ctx: JobContext) -> None:
        return None

    job = await work.enqueue_async(3)
    assert job.payload == b'{"n":3}'
    assert work.ctx_param == "ctx"
    # The worker supplies the context; passing one at enqueue is a caller error.
    with pytest.raises(PayloadError, match="job context"):
        await work.enqueue_async(n=4, ctx="sneaky")
    assert len(await (await mem_app.backend()).job_list(JobQuery())) == 1


async def test_positional_arguments_never_land_in_the_ctx_slot(mem_app: App) -> None:
    @mem_app.task
    def send(to: str, ctx: JobContext, retries: int = 1) -> None:
        return None

    assert (await send.enqueue_async("a", 2)).arguments == {"to": "a", "retries": 2}


async def test_optional_ctx_annotation_is_recognised(mem_app: App) -> None:
    @mem_app.task
    def maybe(n: int, ctx: JobContext | None = None) -> None:
        return None

    assert maybe.ctx_param == "ctx"
    assert (await maybe.enqueue_async(1)).arguments == {"n": 1}


async def test_payload_over_the_limit_is_refused(mem_app: App) -> None:
    app = App("memory://", settings=Settings(max_payload_bytes=64))
    try:
        send = _send_task(app)
        await send.enqueue_async("x" * 10)
        with pytest.raises(PayloadTooLargeError, match="limit is 64"):
            await send.enqueue_async("x" * 100)
        assert len(await _stored(app)) == 1
    finally:
        await app.close_async()


def test_payload_too_large_is_a_payload_error() -> None:
    assert issubclass(PayloadTooLargeError, PayloadError)


async def test_default_task_name_is_module_and_qualname(mem_app: App) -> None:
    @mem_app.task
    def tidy() -> None:
        return None

    assert tidy.name == f"{__name__}.test_default_task_name_is_module_and_qualname.<locals>.tidy"
    assert mem_app.get_task(tidy.name) is tidy
    with pytest.raises(UnknownTaskError):
        mem_app.get_task("nobody.registered")


# command handlers ------------------------------------------------------------------


async def test_handler_and_dispatch_store_the_command(mem_app: App) -> None:
    @mem_app.handler(Resize, queue="images")
    async def handle(cmd: Resize) -> str:
        return cmd.path

    job = await mem_app.dispatch_async(Resize(path="a.png", width=64))
    assert (job.task, job.queue) == (f"{__name__}.Resize", "images")
    assert job.arguments == {"path": "a.png", "width": 64}
    assert handle.decode_payload(job.payload) == ((Resize(path="a.png", width=64),), {})


def test_sync_dispatch_with_options() -> None:
    app = App("memory://")

    @app.handler(Resize)
    def handle(cmd: Resize) -> None:
        return None

    job = app.dispatch(Resize(path="b.png", width=8), tenant="acme", priority=4)
    assert (job.tenant, job.priority) == ("acme", 4)
    assert app.get_job(job.id, "acme").arguments == {"path": "b.png", "width": 8}


async def test_handler_validates_a_mapping_command(mem_app: App) -> None:
    @mem_app.handler(Resize)
    def handle(cmd: Resize) -> None:
        return None

    job = await handle.enqueue_async({"path": "c.png", "width": 3})
    assert job.arguments == {"path": "c.png", "width": 3}
    with pytest.raises(PayloadError, match="width"):
        await handle.enqueue_async({"path": "c.png", "width": "wide"})
    assert len(await _stored(mem_app)) == 1


async def test_dispatch_of_an_unregistered_command_fails(mem_app: App) -> None:
    with pytest.raises(UnknownTaskError, match="Resize"):
        await mem_app.dispatch_async(Resize(path="a", width=1))


# options --------------------------------------------------------------------------


async def test_options_override_queue_priority_delay_tenant(mem_app: App) -> None:
    send = _send_task(mem_app)
    job = await send.options(queue="high", priority=9, delay=600, tenant="acme").enqueue_async(
        "a@b.c"
    )
    assert (job.queue, job.priority, job.tenant, job.state) == (
        "high", 9, "acme", State.SCHEDULED,
    )  # fmt: skip
    assert job.run_at - job.created_at == timedelta(seconds=600)


async def test_options_chain_and_leave_the_task_untouched(mem_app: App) -> None:
    send = _send_task(mem_app)
    bound = send.options(queue="low").options(max_attempts=7, unique_key="u")
    job = await bound.enqueue_async("a@b.c")
    assert (job.queue, job.max_attempts, job.unique_key) == ("low", 7, "u")
    assert (await bound.enqueue_async("a@b.c")).id == job.id
    plain = await send.enqueue_async("a@b.c")
    assert (plain.queue, plain.max_attempts, plain.unique_key) == ("default", 3, None)


async def test_run_at_option(mem_app: App) -> None:
    send = _send_task(mem_app)
    when = datetime.now(UTC) + timedelta(hours=1)
    job = await send.options(run_at=when).enqueue_async("a@b.c")
    assert (job.state, job.run_at) == (State.SCHEDULED, when)


def test_unknown_option_is_refused() -> None:
    app = App("memory://")
    send = _send_task(app)
    with pytest.raises(TypeError):
        send.options(colour="red")


# bulk and sync ---------------------------------------------------------------------


async def test_enqueue_many_with_tuples_and_dicts_in_one_round_trip(
    mem_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = _send_task(mem_app)
    backend = await mem_app.backend()
    calls: list[int] = []
    original = backend.job_enqueue_many

    async def counting(jobs: Any) -> list[Job]:
        calls.append(len(jobs))
        return await original(jobs)

    monkeypatch.setattr(backend, "job_enqueue_many", counting)
    jobs = await send.enqueue_many_async([("a@b.c",), {"to": "c@d.e", "retries": 4}, ("e@f.g", 2)])
    assert calls == [3]
    assert [j.arguments for j in jobs] == [
        {"to": "a@b.c", "retries": 1},
        {"to": "c@d.e", "retries": 4},
        {"to": "e@f.g", "retries": 2},
    ]


async def test_enqueue_many_stores_nothing_when_one_item_is_bad(mem_app: App) -> None:
    send = _send_task(mem_app)
    with pytest.raises(PayloadError, match="to"):
        await send.enqueue_many_async([("a@b.c",), {"to": 5}])
    assert await _stored(mem_app) == []


def test_sync_enqueue_from_a_plain_thread() -> None:
    app = App("memory://")
    send = _send_task(app)
    jobs: list[Job] = []
    thread = threading.Thread(target=lambda: jobs.append(send.enqueue("t@x.y")))
    thread.start()
    thread.join(timeout=10)
    assert len(jobs) == 1
    assert app.get_job(jobs[0].id).arguments == {"to": "t@x.y", "retries": 1}
    many = send.enqueue_many([("u@x.y",), {"to": "v@x.y"}])
    assert [app.get_job(j.id).state for j in many] == [State.QUEUED, State.QUEUED]


async def test_sync_and_async_enqueue_share_storage(mem_app: App) -> None:
    send = _send_task(mem_app)
    from_loop = await send.enqueue_async("loop@x.y")
    from_thread = await _in_thread(lambda: send.enqueue("thread@x.y"))
    ids = {j.id for j in await _stored(mem_app)}
    assert ids == {from_loop.id, from_thread.id}


async def _in_thread(fn: Callable[[], Job]) -> Job:
    return await asyncio.to_thread(fn)


# results ---------------------------------------------------------------------------


async def test_result_of_returns_the_declared_type(mem_app: App) -> None:
    @mem_app.task
    def summarise() -> Report:
        return Report(total=3, at=datetime(2024, 1, 2, tzinfo=UTC))

    job = await _run_by_hand(mem_app, summarise, summarise())
    assert job.result == {"total": 3, "at": "2024-01-02T00:00:00Z"}
    assert summarise.result_of(job) == Report(total=3, at=datetime(2024, 1, 2, tzinfo=UTC))


async def test_result_of_a_job_without_result_is_none(mem_app: App) -> None:
    @mem_app.task
    def nothing() -> None:
        return None

    job = await _run_by_hand(mem_app, nothing, None)
    assert job.result_data is None
    assert nothing.result_of(job) is None


async def _run_by_hand(app: App, task: Task[Any], value: Any) -> Job:
    """Lease and complete a job the way a worker records a success."""
    job = await task.enqueue_async()
    backend = await app.backend()
    [leased] = await backend.job_lease("w", [job.queue], 1, 30.0)
    assert await backend.job_complete_many([(leased.lease, task.encode_result(value))]) == [True]
    return await app.get_job_async(job.id)


async def test_options_checked_once_still_follow_the_task_and_each_call() -> None:
    """A bulk enqueue reuses the check of its options; a later change of the
    task's defaults, other options and a bad name are still seen."""
    app = App("memory://")
    send = _send_task(app)
    first = await send.enqueue_many_async([("a@x",), ("b@x",)])
    assert {j.queue for j in first} == {"default"}
    send.queue = "mail"
    assert (await send.enqueue_async("c@x")).queue == "mail"
    assert (await send.options(priority=7).enqueue_async("d@x")).priority == 7
    with pytest.raises(InvalidOptionError, match="queue"):
        await send.options(queue="bad\x00queue").enqueue_async("e@x")
    with pytest.raises(InvalidOptionError, match="queue"):  # a refusal is never kept
        await send.options(queue="bad\x00queue").enqueue_async("e@x")
