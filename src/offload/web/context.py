"""What every endpoint needs from the request: the offload App, its backend for
this event loop, who is asking, and the prefix the web app is mounted under."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from offload.app import App
from offload.backends.base import Backend
from offload.web.auth import Principal, auth_of
from offload.web.shared import SharedReads


def offload_app(request: Request) -> App:
    app: App = request.app.state.offload
    return app


async def backend(request: Request) -> Backend:
    return await offload_app(request).backend()


def shared_reads(request: Request) -> SharedReads:
    reads: SharedReads = request.app.state.offload_shared
    return reads


def principal(request: Request, *, query_token: bool = False) -> Principal:
    return auth_of(request).principal(request, query_token=query_token)


def root(request: Request) -> str:
    """The mount prefix, so links stay right inside a user's own ASGI app."""
    return str(request.scope.get("root_path", "")).rstrip("/")


Endpoint = Callable[[Request], Awaitable[Response]]


def shared_answer(endpoint: Endpoint) -> Endpoint:
    """An endpoint whose answer identical requests asked at the same moment share
    (``offload.web.shared``): same path and query, same mount prefix, and the
    same caller, since what a caller may see depends on who it is."""

    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        scope = request.scope
        key = (endpoint, scope["path"], scope["query_string"], root(request), principal(request))
        return await shared_reads(request).read(key, lambda: endpoint(request))

    return answer
