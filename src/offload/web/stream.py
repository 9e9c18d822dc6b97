"""Server-Sent Events: live transitions for dashboards and end-user pages.

Each connection follows the backend's event feed from a cursor (event ids rise
across the whole backend, so the cursor is simply the last id sent). The app's
one feed follower (``feedhub``) polls the feed every ``poll`` seconds, whatever
push mechanism a backend has or lacks, and wakes the streams when it took new
events; so an event is on the wire within about ``poll`` seconds of being
recorded, and an idle stream costs nothing between heartbeats. Every message carries the
event and a compact snapshot of its job (state, progress, times), so a page can
redraw a row without fetching the job again.

Resuming: the SSE ``id`` of each message is the event id; a reconnecting
``EventSource`` sends it back as ``Last-Event-ID`` and misses nothing. A first
connection may pass ``?after=<id>`` instead. The first message, ``ready``, tells
the client where its stream starts, so it can load the current state after it and
lose nothing in between.

Pauses, resumes and finished batches are events of no job on the same feed
(``lifecycle.CONTROL_KINDS``), so they come in order with the jobs' events and
resume from the same cursor. ``/api/v1/stream`` sends each as a ``control``
message: the event, plus the pauses the caller now sees (as ``GET
/api/v1/pauses`` answers) for a pause or resume, or the batch for a finished
batch. Nothing polls the pause table: it is read only when the feed says it
changed.

A batch's stream follows its tenant's feed the same way and sends a ``batch``
message for each event of one of its jobs (or of a continuation, or its own
``batch_finished``), with the batch's counts as they are when the event is
read, so a progress bar moves with every transition. Its ``ready`` message
carries the batch, read after the cursor was fixed, so the client starts from a
state no later event is missing from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from offload.backends.base import Backend
from offload.errors import BackendError
from offload.job import Event, Job
from offload.lifecycle import EventKind
from offload.web import params as p
from offload.web.auth import Principal
from offload.web.context import backend, principal, root
from offload.web.encoding import dumps
from offload.web.feedhub import FeedHub
from offload.web.openapi import BAD, BATCH_MISSING, MISSING, SSE, Operation, route
from offload.web.problems import Problem
from offload.web.resources import batch_json, event_json, pause_json, snapshot

Reader = Callable[[int], Awaitable[Sequence[Event]]]
Render = Callable[[Sequence[Event]], Awaitable[list[str]]]
BATCH = 500
OUTAGE_PAUSE = 1.0
# Enough for a dashboard in many tabs and for 200 clients behind one token in
# bench/; a tenant's page needs a handful.
MAX_STREAMS_PER_TOKEN = 256
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def stream_all(request: Request) -> Response:
    who = principal(request, query_token=True)
    tenant = who.scope(p.text(request, "tenant"))
    store = await backend(request)
    start = _resume_point(request)
    cursor = start if start is not None else await _feed_tail(store, tenant)

    hub: FeedHub = request.app.state.offload_hub

    async def read(after: int) -> Sequence[Event]:
        held = await hub.read(store, after, tenant, BATCH)
        return held if held is not None else await store.event_feed(after, tenant, BATCH)

    render = _job_frames(store, tenant, who, hub, root(request))
    return _sse(request, store, read, render, cursor)


async def _pauses_seen(store: Backend, tenant: str | None) -> list[dict[str, Any]]:
    """The pauses holding back ``tenant``'s jobs (every pause for ``None``)."""
    found = await store.control_pauses(None)
    return [pause_json(x) for x in found if tenant is None or x.tenant in (None, tenant)]


async def _control_frame(store: Backend, tenant: str | None, event: Event, base: str) -> str:
    """A ``control`` message: the event with what changed as it is now, so a
    page redraws without a request of its own."""
    data: dict[str, Any] = {"event": event_json(event)}
    if event.kind is EventKind.BATCH_FINISHED:
        found = await store.batch_get(str(event.data.get("batch_id")), tenant)
        data["batch"] = None if found is None else batch_json(found, base)
    else:
        data["pauses"] = await _pauses_seen(store, tenant)
    return _frame(event, "control", data)


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

    hub: FeedHub = request.app.state.offload_hub
    return _sse(request, store, read, _job_frames(store, tenant, hub=hub), cursor)


async def stream_batch(request: Request) -> Response:
    tenant = principal(request, query_token=True).tenant
    batch_id = p.batch_id(request)
    store = await backend(request)
    found = await store.batch_get(batch_id, tenant)
    if found is None:
        raise Problem(404, f"no batch {batch_id!r}", kind="batch-not-found")
    owner = found.tenant
    start = _resume_point(request)
    cursor = start if start is not None else await _feed_tail(store, owner)
    current = await store.batch_get(batch_id, tenant)
    ready = {"batch": None if current is None else batch_json(current, root(request))}

    async def read(after: int) -> Sequence[Event]:
        return await store.event_feed(after, owner, BATCH)

    async def render(events: Sequence[Event]) -> list[str]:
        jobs = {}
        for job_id in {e.job_id for e in events if e.job_id is not None}:
            job = await store.job_get(job_id, owner)
            if job is not None and _of_batch(job, batch_id):
                jobs[job_id] = snapshot(job)
        mine = [e for e in events if e.job_id in jobs or _finishes(e, batch_id)]
        if not mine:
            return []
        now = await store.batch_get(batch_id, tenant)
        shape = None if now is None else batch_json(now, root(request))
        return [
            _frame(e, "batch", {"event": event_json(e), "job": jobs.get(e.job_id or ""),
                                "batch": shape})
            for e in mine
        ]  # fmt: skip

    return _sse(request, store, read, render, cursor, ready)


def _finishes(event: Event, batch_id: str) -> bool:
    return event.kind is EventKind.BATCH_FINISHED and event.data.get("batch_id") == batch_id


def _of_batch(job: Job, batch_id: str) -> bool:
    """A member of the batch, or one of its continuations (which carry the
    batch's summary instead of its id)."""
    if job.batch_id == batch_id:
        return True
    info = job.meta.get("batch")
    return isinstance(info, dict) and info.get("id") == batch_id


def _resume_point(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return p.after(request) if request.query_params.get("after") else None
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(400, "Last-Event-ID must be an event id", kind="bad-parameter")
    return int(raw)


async def _feed_tail(store: Backend, tenant: str | None) -> int:
    """Where a stream without a cursor starts: one indexed read on backends that
    can (``Backend.event_last_id``), a few one-row probes on the others; paging
    to the end read days of feed for every new stream."""
    return await store.event_last_id(tenant)


def _sse(request: Request, store: Backend, read: Reader, render: Render, cursor: int,
         ready: dict[str, Any] | None = None) -> Response:  # fmt: skip
    settings: StreamSettings = request.app.state.offload_stream
    hub: FeedHub = request.app.state.offload_hub
    who = principal(request, query_token=True)
    settings.admit(who)
    frames = _frames(read, render, cursor, ready or {}, settings, _Pace(hub, store))
    frames = settings.counted(who, frames)
    return StreamingResponse(frames, media_type="text/event-stream", headers=HEADERS)


class _Pace:
    """When a stream reads again: once the app's feed follower took new events,
    or when its heartbeat is due."""

    def __init__(self, hub: FeedHub, store: Backend) -> None:
        self.hub, self.store = hub, store

    def mark(self) -> int:
        return self.hub.generation

    async def wait(self, seen: int, timeout: float) -> None:
        await self.hub.wait(self.store, seen, timeout)


async def _frames(
    read: Reader,
    render: Render,
    cursor: int,
    ready: dict[str, Any],
    settings: StreamSettings,
    pace: _Pace,
) -> AsyncIterator[str]:
    yield f"retry: 1000\nevent: ready\ndata: {dumps({'cursor': cursor} | ready).decode()}\n\n"
    quiet_since = time.monotonic()
    while True:
        seen = pace.mark()
        try:
            batch = await read(cursor)
            frames = await render(batch) if batch else []
        except BackendError:
            # Storage overloaded or away for a moment (the read, or a job's
            # snapshot for its frame): the stream waits for it and tries the
            # same events again rather than dropping the client, which would
            # come back at once and add to the load.
            await asyncio.sleep(OUTAGE_PAUSE)
            continue
        if batch:
            if frames:
                # One write for what one read found: each write goes down the
                # middleware's send chain, which cost more than the frames.
                yield "".join(frames)
            cursor = batch[-1].id
            if frames:
                quiet_since = time.monotonic()
            if len(batch) == BATCH:
                continue
        quiet = time.monotonic() - quiet_since
        if quiet >= settings.heartbeat:
            # A comment keeps proxies from closing an idle connection; a stream
            # that reads events but sends none of them is idle too.
            yield ": heartbeat\n\n"
            quiet_since, quiet = time.monotonic(), 0.0
        await pace.wait(seen, settings.heartbeat - quiet)


def _job_frames(store: Backend, tenant: str | None, who: Principal | None = None,
                hub: FeedHub | None = None, base: str = "") -> Render:  # fmt: skip
    """Frames of the events ``who`` may see (a scoped token: its jobs only)."""

    async def render(read: Sequence[Event]) -> list[str]:
        events = [e for e in read if who is None or who.sees(e.job_id)]
        ids = {e.job_id for e in events if e.job_id is not None}
        jobs = await _snapshots(store, tenant, ids, hub)
        frames = []
        for e in events:
            if e.job_id is None:
                frames.append(await _control_frame(store, tenant, e, base))
            else:
                frames.append(_job_frame(e, jobs.get(e.job_id), hub))
        return frames

    return render


async def _snapshots(store: Backend, tenant: str | None, ids: set[str],
                     hub: FeedHub | None = None) -> dict[str, Any]:  # fmt: skip
    """Each job's snapshot: the hub's, read once for every stream when it took
    the event (the event's tenant is the stream's, so the job is too), else read."""
    found = {}
    for job_id in ids:
        held = hub.snapshot(job_id) if hub is not None else None
        if held is not None:
            found[job_id] = held
            continue
        job = await store.job_get(job_id, tenant)
        if job is not None:
            found[job_id] = snapshot(job)
    return found


def _job_frame(event: Event, job: dict[str, Any] | None, hub: FeedHub | None) -> str:
    """Every stream sends a held event with the hub's snapshot of its job, so
    the message is the same text for all of them: encoded once."""

    def make() -> str:
        return _frame(event, "job", {"event": event_json(event), "job": job})

    return make() if hub is None else hub.frame(event.id, make)


def _frame(event: Event, name: str, data: dict[str, Any]) -> str:
    return f"id: {event.id}\nevent: {name}\ndata: {dumps(data).decode()}\n\n"


class StreamSettings:
    """How often the feed follower polls the feed, how long a stream may stay
    silent, and how many streams one identity (a token, or everyone when none is
    required) may hold open: each costs a connection and a task, so one client
    opening thousands would starve the rest."""

    def __init__(self, poll: float = 0.05, heartbeat: float = 15.0,
                 max_per_token: int = MAX_STREAMS_PER_TOKEN) -> None:  # fmt: skip
        if not 0 < poll <= 1:
            raise ValueError("poll must be in (0, 1] seconds")
        if max_per_token < 1:
            raise ValueError("max_per_token must be at least 1")
        self.poll = poll
        self.heartbeat = heartbeat
        self.max_per_token = max_per_token
        self.open: dict[Principal, int] = {}

    def admit(self, who: Principal) -> None:
        if self.open.get(who, 0) >= self.max_per_token:
            raise Problem(429, f"at most {self.max_per_token} streams may be open per token; "
                          "close one first", kind="too-many-streams",
                          headers={"Retry-After": "5"})  # fmt: skip
        self.open[who] = self.open.get(who, 0) + 1

    async def counted(self, who: Principal, frames: AsyncIterator[str]) -> AsyncIterator[str]:
        """``frames``, releasing the stream's place however it ends."""
        try:
            async for frame in frames:
                yield frame
        finally:
            left = self.open.get(who, 1) - 1
            if left:
                self.open[who] = left
            else:
                self.open.pop(who, None)


def routes() -> list[BaseRoute]:
    return [
        route("/api/v1/stream", stream_all, "GET", Operation(
              "Live events of every visible job (SSE)",
              {"200": SSE, **BAD}, ["tenant", "after", "token"])),
        route("/api/v1/jobs/{job_id}/stream", stream_job, "GET", Operation(
              "Live events of one job (SSE)",
              {"200": SSE, **BAD, **MISSING}, ["job_id", "after", "token"])),
        route("/api/v1/batches/{batch_id}/stream", stream_batch, "GET", Operation(
              "Live counts of one batch (SSE: `ready` {cursor, batch}, then `batch` "
              "{event, job, batch})",
              {"200": SSE, **BAD, **BATCH_MISSING}, ["batch_id", "after", "token"])),
    ]  # fmt: skip
