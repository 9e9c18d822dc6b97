"""The one bridge from sync code to the async core.

Sync calls (``task.enqueue``, ``app.get_job``) run their coroutine on a private
event loop in a daemon thread. One long-lived loop, rather than ``asyncio.run``
per call, keeps the backend's connections open between calls, and it works from
any thread, including one whose own event loop is running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _portal() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="offload-sync", daemon=True).start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the bridge loop and wait for its result in this thread."""
    loop = _portal()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("a sync offload call was made on the bridge loop itself; use *_async")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
