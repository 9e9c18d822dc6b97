"""The web face of offload: the JSON API, live streams and the dashboard.

``create_app(app)`` returns a Starlette application that keeps the offload
``App`` on its state, so it runs alone (``offload web``) or mounted inside a
user's own ASGI app. It reads and steers jobs only through the ``App`` and the
backend contract, like the CLI, so it works the same on every backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from offload.app import App
from offload.web import api, batches, control, observability, schedules, stream, workflows
from offload.web.auth import TokenAuth
from offload.web.dashboard import routes as dashboard_routes
from offload.web.encoding import dumps
from offload.web.openapi import Operation, body, document, route
from offload.web.problems import EXCEPTION_HANDLERS
from offload.web.stream import StreamSettings

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
) -> Starlette:
    """The web app for ``app``. ``tokens`` maps bearer tokens to a tenant, or to
    ``None``/``"*"`` for an admin; without tokens the API is open (local use)."""
    auth = TokenAuth(tokens)

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    routes: list[BaseRoute] = [*api.routes(), *batches.routes(), *schedules.routes(),
                               *control.routes(), *stream.routes(),
                               *observability.routes(), *workflows.routes()]  # fmt: skip
    routes.append(route("/openapi.json", openapi, "GET", OPENAPI))
    if dashboard:
        routes.extend(dashboard_routes())
    spec = dumps(document(routes, secured=auth.enabled))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await app.close_async()

    web = Starlette(debug=debug, routes=routes, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=lifespan)  # fmt: skip
    web.state.offload = app
    web.state.offload_auth = auth
    web.state.offload_stream = StreamSettings(stream_poll, heartbeat)
    return web


__all__ = ["create_app"]
