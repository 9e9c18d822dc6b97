"""Identical reads asked at the same moment share one call.

A dashboard in many tabs, or many clients polling ``/api/v1/queues``, ask for
the same counts at once; each count reads every job row (``job_counts`` is a
scan on every backend). Requests that arrive while the same read is in flight
wait for that read instead of starting their own, so an answer is never older
than the read that was running when the request came in, and 40 requests in
one burst cost one scan (``bench/concurrency.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SharedReads:
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def read(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            running = asyncio.ensure_future(call())
            self._running[key] = running
            running.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: a client that hangs up does not cancel the read the others await.
        result: T = await asyncio.shield(running)
        return result

    def _forget(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it; no "never retrieved" warning
