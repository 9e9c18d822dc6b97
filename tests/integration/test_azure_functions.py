"""The Azure Functions trigger, fed real messages received from Azurite."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import azure.functions as func
import pytest
from azure.storage.queue import TextBase64DecodePolicy
from azure.storage.queue.aio import QueueClient

from offload import App, JobContext
from offload.backends.azure import AzureBackend
from offload.backends.azure._url import parse
from offload.backends.azure.clients import storage_queue_name
from offload.integrations.azure_functions import blueprint, handle_queue_message
from offload.lifecycle import EventKind, State
from tests.contract.helpers import eventually
from tests.servers.azurite import ENV, azure_url


@pytest.fixture
async def app(request: pytest.FixtureRequest) -> AsyncIterator[App]:
    application = App(azure_url(request))
    try:
        yield application
    finally:
        await application.close_async()


async def _message(app: App, queue: str = "default") -> func.QueueMessage:
    """The next message of the queue as the Functions host would hand it over."""
    name = storage_queue_name(parse(app.backend_url).prefix, queue)
    client = QueueClient.from_connection_string(
        os.environ[ENV], name, message_decode_policy=TextBase64DecodePolicy()
    )
    async with client:

        async def receive() -> func.QueueMessage | None:
            async for m in client.receive_messages(max_messages=1, visibility_timeout=60):
                await client.delete_message(m)  # what the host does after success
                return func.QueueMessage(id=m.id, body=m.content.encode(),
                                         pop_receipt=m.pop_receipt)  # fmt: skip
            return None

        return await eventually(receive, timeout=15, what=f"a message on {name}")


async def test_a_message_runs_its_job_to_success(app: App) -> None:
    @app.task(name="fx.add")
    async def add(a: int, b: int, ctx: JobContext) -> int:
        await ctx.progress_async(0.5, "half")
        return a + b

    job = await add.enqueue_async(2, 3)
    done = await handle_queue_message(app, await _message(app))
    assert done is not None
    assert (done.id, done.state, done.result, done.attempts) == (job.id, State.SUCCEEDED, 5, 1)
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert kinds == [EventKind.ENQUEUED, EventKind.STARTED, EventKind.PROGRESS,
                     EventKind.SUCCEEDED]  # fmt: skip


async def _messages(app: App, want: int, queue: str = "default") -> list[func.QueueMessage]:
    """``want`` messages of the queue, received (hidden for a minute) and deleted."""
    got: list[func.QueueMessage] = []

    async def more() -> list[func.QueueMessage] | None:
        got.append(await _message(app, queue))
        return got if len(got) >= want else None

    return await eventually(more, timeout=15, what=f"{want} messages")


def _names(msg: func.QueueMessage) -> str:
    return str(json.loads(msg.get_body())["id"])


async def test_a_message_runs_the_job_it_names_not_the_queues_first(app: App) -> None:
    @app.task(name="fx.echo")
    async def echo(n: int) -> int:
        return n

    first = await echo.enqueue_async(1)
    second = await echo.enqueue_async(2)
    [msg] = [m for m in await _messages(app, 2) if _names(m) == second.id]
    done = await handle_queue_message(app, msg)
    assert done is not None
    assert (done.id, done.state, done.result) == (second.id, State.SUCCEEDED, 2)
    assert (await app.get_job_async(first.id)).state is State.QUEUED


async def test_a_paused_job_is_not_run_and_gets_a_message_for_later(app: App) -> None:
    @app.task(name="fx.held")
    async def held() -> None:
        return None

    await app.pause_async(queue="default")
    job = await held.enqueue_async()
    msg = await _message(app)
    again = await handle_queue_message(app, msg)
    assert again is not None
    assert (again.id, again.state, again.attempts) == (job.id, State.QUEUED, 0)
    name = storage_queue_name(parse(app.backend_url).prefix, "default")
    client = QueueClient.from_connection_string(os.environ[ENV], name)
    async with client:
        # The received message is gone; the one waiting is the trigger's new one.
        assert (await client.get_queue_properties()).approximate_message_count == 1


async def test_a_message_back_from_a_dead_host_redelivers_its_job(app: App) -> None:
    @app.task(name="fx.again")
    async def again() -> str:
        return "done"

    job = await again.enqueue_async()
    msg = await _message(app)
    backend = await app.backend()
    assert isinstance(backend, AzureBackend)
    # A host took the job under a short lease, then died without a word.
    taken = await backend.job_lease_one("dead-host", job.id, 0.2)
    assert taken is not None
    assert taken.lease_expires_at is not None
    expiry = taken.lease_expires_at

    async def expired() -> bool:
        return await backend.now() > expiry

    await eventually(expired, timeout=10, what="the dead host's lease to run out")
    done = await handle_queue_message(app, msg)  # the message, visible again
    assert done is not None
    assert (done.id, done.state, done.result, done.attempts) == (
        job.id, State.SUCCEEDED, "done", 2)  # fmt: skip
    kinds = [e.kind for e in await app.events_async(job.id)]
    assert EventKind.LEASE_EXPIRED in kinds


async def test_a_failure_schedules_the_retry_and_returns_normally(app: App) -> None:
    @app.task(name="fx.flaky", max_attempts=2, retry=[0])
    def flaky(ctx: JobContext) -> str:
        if ctx.attempt == 1:
            raise RuntimeError("first time")
        return "second time"

    job = await flaky.enqueue_async()
    first = await handle_queue_message(app, await _message(app))
    assert first is not None
    assert first.state in (State.SCHEDULED, State.QUEUED)
    assert first.error is not None
    second = await handle_queue_message(app, await _message(app))  # the retry's own message
    assert second is not None
    assert (second.id, second.state, second.result, second.attempts) == (
        job.id, State.SUCCEEDED, "second time", 2)  # fmt: skip


async def test_exhausted_attempts_end_dead_in_offloads_dead_letter(app: App) -> None:
    @app.task(name="fx.broken", max_attempts=1)
    def broken() -> None:
        raise ValueError("never works")

    job = await broken.enqueue_async()
    done = await handle_queue_message(app, await _message(app))
    assert done is not None
    assert (done.id, done.state) == (job.id, State.DEAD)
    assert done.error is not None
    assert done.error.type.endswith("ValueError")


async def test_a_message_for_a_job_already_run_changes_nothing(app: App) -> None:
    @app.task(name="fx.once")
    def once() -> str:
        return "ran"

    job = await once.enqueue_async()
    msg = await _message(app)
    await handle_queue_message(app, msg)
    again = await handle_queue_message(app, msg)
    assert again is not None
    assert (again.state, again.attempts) == (State.SUCCEEDED, 1)
    assert again.id == job.id


def test_a_blueprint_has_one_trigger_per_queue(request: pytest.FixtureRequest) -> None:
    app = App(azure_url(request))
    bp = blueprint(app, queues=["default", "emails"])
    prefix = parse(app.backend_url).prefix
    names = sorted(storage_queue_name(prefix, q) for q in ("default", "emails"))
    triggers = sorted(
        b.queue_name for fb in bp._function_builders for b in fb._function.get_bindings()
    )
    assert triggers == names
