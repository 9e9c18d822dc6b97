"""Server-Sent Events over a real socket: delivery, resume and heartbeats.

uvicorn serves the app in a thread; the test reads the raw stream with httpx and
records transitions through the backend contract in its own event loop, so each
message is checked end to end. How fast a message arrives is measured in
``bench/stream_latency.py``, not asserted here: a shared machine makes any
timing bound in a test either loose or flaky.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from offload import App
from offload.backends import Backend
from offload.job import JobQuery
from offload.testing import eventually
from offload.web import create_app
from offload.web.scoped import sign
from tests.web.conftest import Server

# How long a message may take before the test fails: a bound against hanging,
# generous for a loaded machine, never a latency target.
DEADLINE = 10.0


@dataclass
class Message:
    event: str = "message"
    id: str | None = None
    data: Any = None
    comment: str | None = None


@dataclass
class Reader:
    """Parses an SSE response into messages."""

    messages: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    ready: Message = field(default_factory=Message)

    async def run(self, response: httpx.Response) -> None:
        current: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                await self.messages.put(Message(comment=line[1:].strip()))
            elif line:
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
            elif current:
                data = json.loads(current["data"]) if "data" in current else None
                await self.messages.put(Message(current.get("event", "message"),
                                                current.get("id"), data))  # fmt: skip
                current = {}

    async def next(self, event: str = "job", timeout: float = DEADLINE) -> Message:
        while True:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if message.event == event and message.comment is None:
                return message


@pytest.fixture
def server(app: App) -> Iterator[Server]:
    with Server(create_app(app, heartbeat=0.3)) as running:
        yield running


@pytest.fixture
async def store(app: App) -> AsyncIterator[Backend]:
    yield await app.backend()
    await app.close_async()


@contextlib.asynccontextmanager
async def stream(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Reader]:
    """An open stream, read in the background, once its ``ready`` message is in."""
    reader = Reader()
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", url, headers=headers or {}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        task = asyncio.create_task(reader.run(response))
        try:
            reader.ready = await reader.next("ready")
            yield reader
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


async def enqueue(app: App, **options: Any) -> str:
    job = await app.get_task("add").options(**options).enqueue_async(1, 2)
    return job.id


async def test_each_transition_reaches_the_client(app: App, server: Server, store: Backend) -> None:
    job_id = await enqueue(app)
    async with stream(f"{server.url}/api/v1/stream") as reader:
        for _ in range(3):  # each of several transitions, not a lucky one
            await store.job_lease("w1", ["default"], 1, 30)
            message = await reader.next()  # fails after its deadline if none comes
            assert message.data["event"]["kind"] == "started"
            assert message.data["job"]["state"] == "running"
            assert message.data["job"]["id"] == job_id
            await store.job_cancel(job_id)
            await reader.next()  # cancel_requested
            job_id = await enqueue(app)
            await reader.next()  # enqueued


async def test_messages_carry_the_event_id_and_a_job_snapshot(
    app: App, server: Server, store: Backend
) -> None:
    async with stream(f"{server.url}/api/v1/stream") as reader:
        job_id = await enqueue(app, tenant="acme")
        message = await reader.next()
    latest = await store.event_latest(job_id)
    assert latest is not None
    assert message.id == str(latest.id)
    assert message.data["event"] == {
        "id": latest.id, "job_id": job_id, "tenant": "acme", "kind": "enqueued",
        "at": latest.at.isoformat(), "data": latest.data,
    }  # fmt: skip
    assert message.data["job"]["state"] == "queued"
    assert message.data["job"]["progress"] is None


async def test_resume_with_last_event_id_misses_nothing(
    app: App, server: Server, store: Backend
) -> None:
    async with stream(f"{server.url}/api/v1/stream") as reader:
        await enqueue(app)
        seen = await reader.next()
    missed = [await enqueue(app) for _ in range(3)]
    headers = {"Last-Event-ID": str(seen.id)}
    async with stream(f"{server.url}/api/v1/stream", headers) as reader:
        again = [await reader.next() for _ in missed]
    assert [m.data["job"]["id"] for m in again] == missed
    feed = await store.event_feed(int(str(seen.id)))
    assert [m.id for m in again] == [str(e.id) for e in feed]


async def test_after_query_parameter_resumes_too(app: App, server: Server) -> None:
    first = await enqueue(app)
    second = await enqueue(app)
    async with stream(f"{server.url}/api/v1/stream?after=0") as reader:
        got = [(await reader.next()).data["job"]["id"] for _ in range(2)]
    assert got == [first, second]


async def test_job_stream_replays_its_history_then_follows_it(
    app: App, server: Server, store: Backend
) -> None:
    job_id = await enqueue(app)
    other = await enqueue(app)
    async with stream(f"{server.url}/api/v1/jobs/{job_id}/stream") as reader:
        assert (await reader.next()).data["event"]["kind"] == "enqueued"
        await store.job_cancel(other)
        await store.job_cancel(job_id)
        message = await reader.next()
    assert message.data["event"]["kind"] == "cancelled"
    assert message.data["job"]["id"] == job_id


async def test_tenant_stream_sees_only_its_tenant(app: App) -> None:
    web = create_app(app, tokens={"ta": "a", "root": None})
    with Server(web) as server:
        async with stream(f"{server.url}/api/v1/stream?token=ta") as reader:
            await enqueue(app, tenant="b")
            mine = await enqueue(app, tenant="a")
            message = await reader.next()
    assert message.data["job"]["id"] == mine
    assert message.data["event"]["tenant"] == "a"


async def test_idle_stream_sends_heartbeat_comments(server: Server) -> None:
    async with stream(f"{server.url}/api/v1/stream") as reader:
        message = await asyncio.wait_for(reader.messages.get(), 2)
    assert message.comment == "heartbeat"


async def test_a_closed_client_leaves_no_connection_behind(server: Server) -> None:
    async with stream(f"{server.url}/api/v1/stream"):
        assert len(server.server.server_state.connections) == 1

    async def closed() -> bool:
        return not server.server.server_state.connections

    assert await eventually(closed, timeout=5)


async def test_batch_stream_pushes_its_counts_when_one_of_its_jobs_moves(
    app: App, server: Server, store: Backend
) -> None:
    add = app.get_task("add")
    batch = await app.batch_async([add.prepare(1, 2), add.prepare(3, 4)], name="pair")
    members = [j.id for j in await app.list_jobs_async(JobQuery(batch_id=batch.id))]
    outsider = await enqueue(app)
    async with stream(f"{server.url}/api/v1/batches/{batch.id}/stream") as reader:
        assert reader.ready.data["batch"]["counts"]["queued"] == 2
        await store.job_cancel(outsider)  # not of the batch: nothing is sent
        await store.job_cancel(members[0])
        message = await reader.next("batch")
        await store.job_cancel(members[1])
        last = await reader.next("batch")
    assert message.data["event"]["kind"] == "cancelled"
    assert message.data["job"]["id"] == members[0]
    assert message.data["job"]["batch_id"] == batch.id
    assert message.data["batch"]["id"] == batch.id
    assert message.data["batch"]["counts"]["cancelled"] >= 1
    assert last.data["job"]["id"] == members[1]
    assert (last.data["batch"]["counts"]["cancelled"], last.data["batch"]["progress"]) == (2, 1.0)
    latest = await store.event_latest(members[1])
    assert latest is not None
    assert last.id == str(latest.id)


async def test_batch_stream_is_scoped_to_the_tokens_tenant(app: App) -> None:
    add = app.get_task("add")
    theirs = await app.batch_async([add.prepare(1, 2)], tenant="b")
    mine = await app.batch_async([add.prepare(1, 2)], tenant="a")
    web = create_app(app, tokens={"ta": "a", "root": None})
    with Server(web) as server:
        async with httpx.AsyncClient(timeout=10) as client:
            refused = await client.get(f"{server.url}/api/v1/batches/{theirs.id}/stream?token=ta")
            assert refused.status_code == 404
            assert refused.headers["content-type"].startswith("application/problem+json")
        url = f"{server.url}/api/v1/batches/{mine.id}/stream?token=ta"
        async with stream(url) as reader:
            assert reader.ready.data["batch"]["tenant"] == "a"


async def test_streams_per_token_are_capped_and_a_closed_one_frees_its_place(app: App) -> None:
    with Server(create_app(app, max_streams_per_token=2, heartbeat=0.2)) as server:
        url = f"{server.url}/api/v1/stream"
        async with stream(url), stream(url):
            async with httpx.AsyncClient(timeout=10) as client:
                refused = await client.get(url)
            assert refused.status_code == 429
            assert refused.headers["retry-after"]
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while True:  # the server notices the closed streams at its next write
            try:
                async with stream(url):
                    break
            except AssertionError:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)


async def test_pauses_and_resumes_come_in_feed_order_to_the_streams_that_see_them(
    app: App, store: Backend
) -> None:
    """Each as a ``control`` message with the pauses the caller sees when it is
    sent; a tenant's stream gets its own and those of every tenant, not another's."""
    web = create_app(app, tokens={"ta": "a", "root": None})
    with Server(web) as server:
        async with (
            stream(f"{server.url}/api/v1/stream?token=ta") as mine,
            stream(f"{server.url}/api/v1/stream?token=root") as every,
        ):
            await store.control_pause("b", None)
            await store.control_pause(None, "mail")
            paused = await mine.next("control")
            job_id = await enqueue(app, tenant="a")
            await store.control_resume(None, "mail")
            job, resumed = await mine.next(), await mine.next("control")
            admin = [await every.next("control") for _ in range(3)]
    assert paused.data["event"] | {"id": 0, "at": ""} == {
        "id": 0, "job_id": None, "tenant": None, "kind": "paused", "at": "",
        "data": {"tenant": None, "queue": "mail"},
    }  # fmt: skip
    assert [(p["tenant"], p["queue"]) for p in paused.data["pauses"]] == [(None, "mail")]
    assert job.data["job"]["id"] == job_id
    assert resumed.data["event"]["kind"] == "resumed"
    assert resumed.data["pauses"] == []
    assert int(str(paused.id)) < int(str(job.id)) < int(str(resumed.id))
    assert [m.data["event"]["data"]["tenant"] for m in admin] == ["b", None, None]
    assert [m.data["event"]["kind"] for m in admin] == ["paused", "paused", "resumed"]
    assert [(p["tenant"], p["queue"]) for p in admin[-1].data["pauses"]] == [("b", None)]


async def test_a_finished_batch_reaches_its_stream_and_the_feed_stream(
    app: App, server: Server, store: Backend
) -> None:
    batch = await app.batch_async([app.get_task("add").prepare(1, 2)], name="one")
    async with (
        stream(f"{server.url}/api/v1/batches/{batch.id}/stream") as follower,
        stream(f"{server.url}/api/v1/stream") as feed,
    ):
        assert await store.batch_finish(batch.id, ["c-1"])
        own = await follower.next("batch")
        control = await feed.next("control")
    for message in (own, control):
        assert message.data["event"]["kind"] == "batch_finished"
        assert message.data["event"]["data"] == {"batch_id": batch.id, "continuation_ids": ["c-1"]}
        assert message.data["batch"]["finished_at"] is not None
    assert own.data["job"] is None
    assert control.data["batch"]["continuation_ids"] == ["c-1"]


async def test_a_token_limited_to_some_jobs_gets_no_control_messages(
    app: App, store: Backend
) -> None:
    job_id = await enqueue(app, tenant="a")
    key = "a signing key of at least 16 bytes"
    token = sign(key, tenant="a", jobs=[job_id])
    with Server(create_app(app, signing_key=key)) as server:
        async with stream(f"{server.url}/api/v1/stream?token={token}") as reader:
            await store.control_pause("a", None)
            await store.job_cancel(job_id)  # a fence: the next message must be this one
            message = await asyncio.wait_for(reader.messages.get(), DEADLINE)
            while message.comment is not None:  # heartbeats
                message = await asyncio.wait_for(reader.messages.get(), DEADLINE)
    assert (message.event, message.data["event"]["kind"]) == ("job", "cancelled")
