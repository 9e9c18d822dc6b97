"""The one bridge from sync code to the async core.

Sync calls (``task.enqueue``, ``app.get_job``) run their coroutine on a private
event loop in a daemon thread. One long-lived loop, rather than ``asyncio.run``
per call, keeps the backend's connections open between calls, and it works from
any thread, including one whose own event loop is running.

A job's sync writes (``ctx.save``) go to the worker's loop instead, the one whose
connections lease and record the job; ``run_or_schedule`` is their bridge.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from offload.errors import UsageError

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
# Writes scheduled on a loop without waiting; held here so the loop's weak
# reference to a task is never its only one.
_pending: set[asyncio.Task[None]] = set()


def _portal() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="offload-sync", daemon=True).start()
            _loop = loop
        return _loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the bridge loop and wait for its result in this thread."""
    return run_on(_portal(), coro)


def run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop``, which another thread drives, and wait for it.
    Waiting from the loop's own thread would block it forever, so that is refused."""
    if _running_loop() is loop:
        coro.close()
        raise UsageError("a sync offload call was made on the event loop it waits for; use *_async")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def run_or_schedule(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on ``loop``: from another thread wait for it, so a write is
    durable before the caller goes on; on the loop itself (an async task using a
    sync spelling) blocking is impossible, so it is scheduled instead."""
    if _running_loop() is not loop:
        run_on(loop, coro)
        return
    task = loop.create_task(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
