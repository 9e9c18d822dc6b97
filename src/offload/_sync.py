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
import atexit
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from offload.errors import UsageError

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
# Writes scheduled on a loop without waiting; held here so the loop's weak
# reference to a task is never its only one.
_pending: set[asyncio.Task[None]] = set()
# What to close on the bridge loop when the interpreter exits: a backend's pool
# keeps tasks on it, and a loop dropped with them pending prints "Task was
# destroyed but it is pending!" at the end of every script.
Closer = Callable[[], Coroutine[Any, Any, None] | None]
_closers: list[Closer] = []
_EXIT_TIMEOUT = 5.0


def _after_fork_in_child() -> None:
    """A forked child has no bridge thread: its copy of the loop would take
    calls that nobody runs, and every sync call would wait forever. The child
    starts its own on its first sync call; the parent's loop, and the
    connections its backends hold, are left alone (closing them here would
    shut the parent's sockets)."""
    global _lock, _loop
    _lock, _loop = threading.Lock(), None
    _pending.clear()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


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


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``, which must never wait for anything, to its end in this
    thread with no event loop: the middleware chain's enqueue steps when every
    hook is a plain function (``App._store_new_sync``)."""
    try:
        coro.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    coro.close()
    raise UsageError(
        "a middleware enqueue hook returned something to await during a sync enqueue; "
        "declare the hook `async def` so that sync enqueues run it on an event loop"
    )


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


def is_bridge(loop: asyncio.AbstractEventLoop) -> bool:
    return loop is _loop


def close_at_exit(closer: Closer) -> None:
    """Run ``closer()``'s coroutine on the bridge loop at interpreter exit (a
    ``None`` from it means there is nothing left to close)."""
    with _lock:
        if not _closers:
            atexit.register(_shutdown)
        _closers.append(closer)


def _shutdown() -> None:
    loop = _loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    for closer in _closers:
        coro = closer()
        if coro is not None:
            _finish(loop, coro)
    _finish(loop, _cancel_the_rest())
    loop.call_soon_threadsafe(loop.stop)


def _finish(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
    # Exit goes on whatever happens: a server gone away must not hang it.
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=_EXIT_TIMEOUT)


async def _cancel_the_rest() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
