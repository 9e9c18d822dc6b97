"""The checks every request passes before any endpoint runs, and the headers
every response leaves with.

A browser attaches no bearer token on its own, but an open server (no tokens,
the default on a developer's machine) has nothing else to stop a page of another
origin from steering it: a ``<form enctype="text/plain">`` posts without any
script, and DNS rebinding makes the browser believe the attacker's name points
at 127.0.0.1. So, before routing:

- the path and query must be valid UTF-8 once percent-decoded (else 400), since
  a replacement character stored in their place names nothing the caller sent;
- an open server answers only to the host names it was told (loopback by
  default), which defeats DNS rebinding (400);
- a request that changes something must come from the server's own origin, or
  one configured: ``Origin`` and ``Sec-Fetch-Site`` say where a browser request
  comes from (403);
- a body is JSON, declared as such (415): the content types a cross-site form
  may send without a CORS preflight are all refused.

Every response carries a Content-Security-Policy that lets pages load scripts
and styles from this server only and be framed by nobody (the one-click Pause
and Cancel buttons cannot be clickjacked), and API responses are ``no-store``:
they carry arguments and results.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offload.web.problems import Problem, problem_response

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Starlette's TestClient sends this name; it resolves nowhere, so a rebinding
# attacker cannot use it.
TEST_HOSTS = frozenset({"testserver"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class Guard:
    """ASGI middleware around the whole web app; see the module docstring.

    ``hosts`` is ``None`` to accept any ``Host`` (a server with tokens, or
    behind a proxy that checks it); ``origins`` are extra origins allowed to
    send requests that change something (``https://admin.example.com``)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str] | None, origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = None if hosts is None else frozenset(h.lower() for h in hosts)
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.refusal(scope)
        if problem is not None:
            await problem_response(problem)(scope, receive, _secured(scope, send))
            return
        await self.app(scope, receive, _secured(scope, send))

    def refusal(self, scope: Scope) -> Problem | None:
        headers = Headers(scope=scope)
        return (
            _bad_encoding(scope)
            or self._bad_host(headers)
            or self._foreign(scope, headers)
            or _not_json(scope, headers)
        )

    def _bad_host(self, headers: Headers) -> Problem | None:
        if self.hosts is None:
            return None
        host = _hostname(headers.get("host", ""))
        if host in self.hosts:
            return None
        return Problem(400, f"this server does not answer to host {host!r}; add it to the "
                       "allowed hosts, or configure tokens", kind="host-not-allowed")  # fmt: skip

    def _foreign(self, scope: Scope, headers: Headers) -> Problem | None:
        """A browser request that would change something, sent by another site."""
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None:
            # Its own host and port, whatever the scheme: behind a proxy that
            # ends TLS the page is https and this server sees http.
            given, host = origin.rstrip("/").lower(), headers.get("host", "").lower()
            if given in self.origins or (host and given.partition("://")[2] == host):
                return None
            return _cross_site(f"requests from origin {origin!r} may not change anything")
        if headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none"):
            return None
        return _cross_site("requests from another site may not change anything")


def _cross_site(detail: str) -> Problem:
    return Problem(403, detail, kind="cross-site-request")


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bad_encoding(scope: Scope) -> Problem | None:
    raw = scope.get("raw_path") or scope.get("path", "").encode()
    for part, what in ((raw, "path"), (scope.get("query_string", b""), "query")):
        try:
            unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError:
            return Problem(400, f"the {what} is not valid UTF-8", kind="invalid-encoding")
    return None


def _not_json(scope: Scope, headers: Headers) -> Problem | None:
    """A declared content type other than JSON, or a body with none declared."""
    if scope["method"] in SAFE_METHODS:
        return None
    declared = headers.get("content-type")
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if declared is None and not has_body:
        return None
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return None
    shown = repr(declared) if declared else "none"
    return Problem(415, f"the body must be application/json, not {shown}",
                   kind="unsupported-media-type")  # fmt: skip


def _secured(scope: Scope, send: Send) -> Send:
    api = "/api/" in scope.get("path", "")

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            if api:
                headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return sender
