"""One connection held out of the pool for a producer's calls one at a time.

Through the client, every command takes a connection from the blocking pool
and gives it back (a condition, a timeout, the observability hooks, the retry
wrapper): callgrind counts about 447k instructions per script call of an
enqueue that way, 267k on a connection already held, where a one-by-one
enqueue spends about 700k in all. So the single-call enqueue runs on this
connection; a call that finds it busy goes through the pool as before, so
concurrent callers are never queued behind each other.

Only a reply fully read leaves the connection in use: a failure of any other
kind (connection lost, a timeout, the caller cancelled mid-call) drops it, and
the call is made again through the client, whose retries handle connection
loss, as for every script (each tolerates running twice). A script error
(``ResponseError``) comes back whole and is raised as it is, except a
function the server does not know, which the client's path answers by
loading the library.

The held connection's calls are bounded by the client's ``socket_timeout``
through one ``asyncio.timeout`` around the send and the read, not through the
connection's own: that one wraps every send in ``asyncio.wait_for``, which on
Python 3.11 makes a task per command (and one more turn of the event loop).
The command is packed by hiredis when it is installed (``offload[redis]``
brings it), the same bytes as redis-py's Python packer writes for the async
client, for a fraction of its cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError

from offload.backends.redis import lua

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # redis-py without its hiredis extra
    _pack = None


def pack(conn: Any, command: list[Any]) -> bytes:
    """The command as the bytes on the wire: hiredis's packer when installed."""
    if _pack is None:
        packed: bytes = conn.pack_command(*command)
        return packed
    return _pack(tuple(command))


class HeldConnection:
    def __init__(self) -> None:
        self._conn: Any = None
        self._busy = False
        self._timeout: float | None = None

    async def run(self, client: Any, name: str, route_key: str, args: list[Any]) -> Any:
        """``lua.run`` on the held connection when it is free, else through ``client``."""
        if self._busy:
            return await lua.run(client, name, route_key, args)
        self._busy = True
        try:
            return await self._run_held(client, name, route_key, args)
        except ResponseError as exc:
            if not lua.missing(exc):
                raise
            return await lua.run(client, name, route_key, args)
        finally:
            self._busy = False

    async def _run_held(self, client: Any, name: str, route_key: str, args: list[Any]) -> Any:
        conn = self._conn
        try:
            if conn is None:
                conn = client.connection_pool.make_connection()
                await conn.connect()  # the handshake under the connection's own timeout
                self._timeout, conn.socket_timeout = conn.socket_timeout, None
                self._conn = conn
            packed = pack(conn, lua.command(name, route_key, args))
            async with asyncio.timeout(self._timeout):
                await conn.send_packed_command(packed)
                return await conn.read_response()
        except ResponseError:
            raise
        except asyncio.CancelledError:
            await self._drop()
            raise
        except Exception:
            await self._drop()
            return await lua.run(client, name, route_key, args)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)

    async def close(self) -> None:
        await self._drop()
