"""The worker's HTTP endpoint: ``/metrics`` and ``/healthz`` on its own port.

A worker has no web framework to lean on and needs two read-only paths, so this
is a minimal HTTP/1.1 responder on asyncio's server, in the worker's own event
loop (the backend connections belong to it). It binds 127.0.0.1 unless told
otherwise: metrics name tasks and queues, which are not for everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from offload.app import App
from offload.observability.health import health_body

log = logging.getLogger("offload.observability")

Handler = Callable[[], Awaitable[tuple[int, str, bytes]]]
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
           503: "Service Unavailable"}  # fmt: skip
# Enough for a request line and the headers a scraper or a probe sends.
MAX_HEAD = 16 * 1024


class MetricsServer:
    """``await server.start()``; ``await server.close()``. ``port`` 0 picks a
    free one (read it back from ``server.port``)."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self.routes: dict[str, Handler] = {"/metrics": self._metrics, "/healthz": self._health}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics and health on http://%s:%d/metrics", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _metrics(self) -> tuple[int, str, bytes]:
        from offload.integrations.prometheus import CONTENT_TYPE, install

        return 200, CONTENT_TYPE, await install(self.app).exposition(self.app)

    async def _health(self) -> tuple[int, str, bytes]:
        status, body = await health_body(self.app)
        return status, "application/json", body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await self._answer(reader)
            head = (f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {content_type}"
                    f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
            writer.write(head.encode() + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage; nothing to answer
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            return 500, "text/plain", b"request too large\n"
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        handler = self.routes.get(path)
        if handler is None:
            return 404, "text/plain", b"not found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"GET only\n"
        try:
            return await handler()
        except Exception:
            log.exception("serving %s failed", path)
            return 500, "text/plain", b"internal error\n"
