"""Backend reachability for Kubernetes probes: a yes or no and nothing else, since
``/healthz`` is served without authentication."""

from __future__ import annotations

import asyncio
import logging

from offload.app import App

log = logging.getLogger("offload.health")

# A probe that hangs is worse than one that fails: Kubernetes has its own timeout.
CHECK_TIMEOUT = 2.0


async def backend_reachable(app: App, timeout: float = CHECK_TIMEOUT) -> bool:
    """Asks the backend for its clock, the cheapest round trip every backend has."""
    try:
        backend = await asyncio.wait_for(app.backend(), timeout)
        await asyncio.wait_for(backend.now(), timeout)
    except Exception as exc:
        log.warning("health check: backend unreachable: %s", type(exc).__name__)
        return False
    return True


async def health_body(app: App) -> tuple[int, bytes]:
    """Status code and JSON body of ``/healthz``."""
    if await backend_reachable(app):
        return 200, b'{"status":"ok"}'
    return 503, b'{"status":"unavailable","backend":"unreachable"}'
