"""Identical reads asked at the same moment share one call.

A dashboard in many tabs, or many clients polling ``/api/v1/queues`` or the
first page of ``/api/v1/jobs``, ask for the same thing at once; each answer
costs a backend read and its rendering (a page of 50 jobs is about a
millisecond of CPU, a count reads every job row). Requests that arrive while
the same read is in flight wait for that read instead of starting their own, so
40 requests in one burst cost one read (``bench/concurrency.py``).

What a shared answer may miss: nothing changed through this server. Every
request that may change something (any method but GET, HEAD and OPTIONS)
counts as a change once done, before its answer leaves, and a read begun before
the last change is never joined: a client that enqueued a job and then lists
jobs sees it, as it would with no sharing. A change made elsewhere (a worker,
another server process, code of this process that calls the App directly) may
be missed by as long as one read takes: the answer is then what a read begun a
moment before that change said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offload.web.guard import SAFE_METHODS

T = TypeVar("T")


class SharedReads:
    def __init__(self) -> None:
        self._running: dict[Hashable, tuple[asyncio.Future[Any], int]] = {}
        self.changes = 0

    def changed(self) -> None:
        """Reads in flight are not joined any more (see the module docstring)."""
        self.changes += 1

    async def read(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        held = self._running.get(key)
        running: asyncio.Future[Any]
        if (held is None or held[1] != self.changes
                or held[0].get_loop() is not asyncio.get_running_loop()):  # fmt: skip
            running = asyncio.ensure_future(call())
            self._running[key] = (running, self.changes)
            running.add_done_callback(lambda done: self._forget(key, done))
        else:
            running = held[0]
        # Shielded: a client that hangs up does not cancel the read the others await.
        result: T = await asyncio.shield(running)
        return result

    def _forget(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        held = self._running.get(key)
        if held is not None and held[0] is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it; no "never retrieved" warning


class CountChanges:
    """ASGI middleware that tells ``reads`` of every request that may change
    something once its work is done: when its answer starts, before the client
    can learn of the change, and again when it ends (an answer never sent)."""

    def __init__(self, app: ASGIApp, reads: SharedReads) -> None:
        self.app = app
        self.reads = reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        reads = self.reads

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                reads.changed()
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            reads.changed()
