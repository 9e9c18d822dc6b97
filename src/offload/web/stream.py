"""Server-Sent Events: live transitions for dashboards and end-user pages.

Each connection follows the backend's event feed from a cursor (event ids rise
across the whole backend, so the cursor is simply the last id sent) with a short
poll, which puts an event on the wire within ``poll`` seconds of being recorded on
every backend, whatever push mechanism it has or lacks. Every message carries the
event and a compact snapshot of its job (state, progress, times), so a page can
redraw a row without fetching the job again.

Resuming: the SSE ``id`` of each message is the event id; a reconnecting
``EventSource`` sends it back as ``Last-Event-ID`` and misses nothing. A first
connection may pass ``?after=<id>`` instead. The first message, ``ready``, tells
the client where its stream starts, so it can load the current state after it and
lose nothing in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from offload.backends.base import Backend
from offload.job import Event
from offload.web import params as p
from offload.web.context import backend, principal
from offload.web.encoding import dumps
from offload.web.problems import Problem
from offload.web.resources import event_json, snapshot

Reader = Callable[[int], Awaitable[Sequence[Event]]]
BATCH = 500
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def stream_all(request: Request) -> Response:
    tenant = principal(request, query_token=True).scope(p.text(request, "tenant"))
    store = await backend(request)
    start = _resume_point(request)
    cursor = start if start is not None else await _feed_tail(store, tenant)

    async def read(after: int) -> Sequence[Event]:
        return await store.event_feed(after, tenant, BATCH)

    return _sse(request, store, tenant, read, cursor)


async def stream_job(request: Request) -> Response:
    tenant = principal(request, query_token=True).tenant
    job_id = p.job_id(request)
    store = await backend(request)
    if await store.job_get(job_id, tenant) is None:
        raise Problem(404, f"no job {job_id!r}", kind="job-not-found")
    # Without a cursor the job's whole history is replayed first: it is short and
    # a client that connects late still sees how the job got where it is.
    cursor = _resume_point(request) or 0

    async def read(after: int) -> Sequence[Event]:
        return await store.event_list(job_id, after, BATCH)

    return _sse(request, store, tenant, read, cursor)


def _resume_point(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return p.after(request) if request.query_params.get("after") else None
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(400, "Last-Event-ID must be an event id", kind="bad-parameter")
    return int(raw)


async def _feed_tail(store: Backend, tenant: str | None) -> int:
    """The newest event id: where a stream without a cursor starts."""
    cursor = 0
    while page := await store.event_feed(cursor, tenant, 1000):
        cursor = page[-1].id
        if len(page) < 1000:
            break
    return cursor


def _sse(request: Request, store: Backend, tenant: str | None, read: Reader,
         cursor: int) -> Response:  # fmt: skip
    settings = request.app.state.offload_stream
    frames = _frames(store, tenant, read, cursor, settings)
    return StreamingResponse(frames, media_type="text/event-stream", headers=HEADERS)


async def _frames(
    store: Backend, tenant: str | None, read: Reader, cursor: int, settings: StreamSettings
) -> AsyncIterator[str]:
    yield f"retry: 1000\nevent: ready\ndata: {dumps({'cursor': cursor}).decode()}\n\n"
    quiet_since = time.monotonic()
    while True:
        batch = await read(cursor)
        if batch:
            jobs = await _snapshots(store, tenant, {e.job_id for e in batch})
            for event in batch:
                yield _frame(event, jobs.get(event.job_id))
            cursor = batch[-1].id
            quiet_since = time.monotonic()
            if len(batch) == BATCH:
                continue
        elif time.monotonic() - quiet_since >= settings.heartbeat:
            # A comment keeps proxies from closing an idle connection.
            yield ": heartbeat\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(settings.poll)


async def _snapshots(store: Backend, tenant: str | None, ids: set[str]) -> dict[str, Any]:
    found = {}
    for job_id in ids:
        job = await store.job_get(job_id, tenant)
        if job is not None:
            found[job_id] = snapshot(job)
    return found


def _frame(event: Event, job: dict[str, Any] | None) -> str:
    data = dumps({"event": event_json(event), "job": job}).decode()
    return f"id: {event.id}\nevent: job\ndata: {data}\n\n"


class StreamSettings:
    """How often a stream polls the feed and how long it may stay silent."""

    def __init__(self, poll: float = 0.05, heartbeat: float = 15.0) -> None:
        if not 0 < poll <= 1:
            raise ValueError("poll must be in (0, 1] seconds")
        self.poll = poll
        self.heartbeat = heartbeat


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/stream", stream_all, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}/stream", stream_job, methods=["GET"]),
    ]
