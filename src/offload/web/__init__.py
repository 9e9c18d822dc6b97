"""The web face of offload: the JSON API, live streams and the dashboard.

``create_app(app)`` returns a Starlette application that keeps the offload
``App`` on its state, so it runs alone (``offload web``) or mounted inside a
user's own ASGI app. It reads and steers jobs only through the ``App`` and the
backend contract, like the CLI, so it works the same on every backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.app import App
from offload.web import (
    api,
    batches,
    control,
    deadletter,
    observability,
    schedules,
    stats,
    stream,
    workflows,
)
from offload.web.auth import TokenAuth
from offload.web.dashboard import routes as dashboard_routes
from offload.web.encoding import dumps
from offload.web.feedhub import FeedHub
from offload.web.guard import LOOPBACK_HOSTS, TEST_HOSTS, Guard
from offload.web.openapi import Operation, body, document, route
from offload.web.problems import EXCEPTION_HANDLERS
from offload.web.secrets import install_redaction
from offload.web.shared import CountChanges, SharedReads
from offload.web.stream import MAX_STREAMS_PER_TOKEN, StreamSettings

OPENAPI = Operation("This document", {"200": body("OpenAPI 3.1", {"type": "object"})},
                    public=True)  # fmt: skip


def create_app(
    app: App,
    *,
    tokens: Mapping[str, str | None] | None = None,
    dashboard: bool = True,
    stream_poll: float = 0.05,
    heartbeat: float = 15.0,
    debug: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    allowed_origins: Iterable[str] = (),
    signing_key: str | bytes | None = None,
    max_streams_per_token: int = MAX_STREAMS_PER_TOKEN,
) -> Starlette:
    """The web app for ``app``. ``tokens`` maps bearer tokens to a tenant, or to
    ``None``/``"*"`` for an admin; without tokens the API is open (local use), and
    then answers only to loopback host names unless ``allowed_hosts`` says more
    (``["*"]``: any). ``allowed_origins`` may send requests that change something
    besides the server's own origin; see ``offload.web.guard``. ``signing_key``
    checks the scoped tokens of ``offload.web.scoped.sign``. One token (or, without
    tokens, everyone) may hold ``max_streams_per_token`` live streams; more is a 429."""
    auth = TokenAuth(tokens, signing_key)
    hosts = _hosts(allowed_hosts, auth.enabled)
    install_redaction("uvicorn.access", "uvicorn.error", "offload.web")

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    routes: list[BaseRoute] = [*api.routes(), *batches.routes(), *schedules.routes(),
                               *control.routes(), *deadletter.routes(), *stream.routes(),
                               *observability.routes(), *workflows.routes(),
                               *stats.routes()]  # fmt: skip
    routes.append(route("/openapi.json", openapi, "GET", OPENAPI))
    if dashboard:
        routes.extend(dashboard_routes())
    spec = dumps(document(routes, secured=auth.enabled))

    hub = FeedHub(stream_poll)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await hub.stop()
        await app.close_async()

    shared = SharedReads()
    guard = Middleware(Guard, hosts=hosts, origins=tuple(allowed_origins))
    web = Starlette(debug=debug, routes=routes, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=lifespan,
                    middleware=[guard, Middleware(CountChanges, reads=shared)])  # fmt: skip
    web.state.offload = app
    web.state.offload_auth = auth
    web.state.offload_hub = hub
    web.state.offload_shared = shared
    web.state.offload_stream = StreamSettings(stream_poll, heartbeat, max_streams_per_token)
    return web


def _hosts(allowed: Iterable[str] | None, tokens: bool) -> frozenset[str] | None:
    """Host names to answer to, ``None`` for any. Bearer tokens are never sent
    by a browser on its own, so a server with tokens needs no host check; an open
    one answers only to loopback names, which a rebinding attacker cannot use."""
    if allowed is None:
        return None if tokens else LOOPBACK_HOSTS | TEST_HOSTS
    names = frozenset(allowed)
    return None if "*" in names else names | LOOPBACK_HOSTS


__all__ = ["create_app"]
