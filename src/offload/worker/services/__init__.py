"""Side loops of a worker, one per file; each is supervised by the worker, so a
loop that dies stops the worker loudly instead of leaving it half-alive.

Each loop also watches a stop event rather than relying on cancellation alone:
a client library that swallows ``CancelledError`` mid-call (seen with network
clients during reconnects) would otherwise keep a loop alive after shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; True when the loop should end."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
