"""A loopback TCP proxy placed between workers and a broker, to cut, slow or
reset their connections on purpose (scenarios 10 and 11).

It runs its own asyncio loop in a thread, so sync and async tests, and the soak
script, drive it the same way. Modes: ``forward`` (normal), ``delay`` (each
chunk waits ``delay`` seconds each way), ``blackhole`` (connections stay open
but nothing passes, like a cut cable), and ``reset()`` closes every live
connection with an RST.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.servers import free_port


def through(url: str, port: int) -> str:
    """``url`` with its host:port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    hostport, _, tail = rest.partition("/")
    user, at, _ = hostport.rpartition("@")
    return f"{scheme}://{user}{at}127.0.0.1:{port}/{tail}"


@dataclass
class FaultProxy:
    target_port: int
    target_host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    mode: str = "forward"
    delay: float = 0.0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _thread: threading.Thread | None = None

    def __enter__(self) -> FaultProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def forward(self) -> None:
        self.mode, self.delay = "forward", 0.0

    def slow(self, seconds: float) -> None:
        self.mode, self.delay = "delay", seconds

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def reset(self) -> None:
        """Abort every live connection (RST): the peers see a reset at once."""
        done = threading.Event()

        def abort() -> None:
            for writer in list(self._writers):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            self._writers.clear()
            done.set()

        self._loop.call_soon_threadsafe(abort)
        done.wait(5)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            # The connections' tasks end here, not as garbage ("Task was
            # destroyed but it is pending!" after every soak and scenario).
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_w}
        pipes = [asyncio.ensure_future(self._pipe(reader, up_w)),
                 asyncio.ensure_future(self._pipe(up_r, writer))]  # fmt: skip
        # Either side closing closes the other, as its FIN would reach the peer
        # of a direct connection: a client waiting on a reply from a broker
        # that was restarted or killed behind the proxy learns it at once,
        # instead of waiting on a socket nothing will ever write to again.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        for w in (writer, up_w):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            while self.mode == "blackhole":  # noqa: ASYNC110 - the mode is set from another thread
                await asyncio.sleep(0.05)
            if self.mode == "delay":
                await asyncio.sleep(self.delay)
            writer.write(chunk)
            await writer.drain()
