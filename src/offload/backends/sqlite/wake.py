"""Waking waiting workers: SQLite cannot push between processes.

Waiters in this process are woken by writes of this process (``notify``). A
commit of another process is noticed by watching the WAL index: its header (the
first bytes of the ``-shm`` file, whose layout SQLite documents at
https://www.sqlite.org/walformat.html, "The WAL-Index Header") changes with
every commit, and reading it is one ``pread`` on the event loop. On Linux an
inotify watch (inotify_simple) on the ``-wal`` file, which every commit appends
to, says when to read it, so a waiter wakes within a millisecond and costs
nothing while nothing happens; elsewhere the header is read every
``cross_process_poll`` seconds. A change is confirmed with ``PRAGMA
data_version``, which ignores the waiting connection's own commits. Where there
is no WAL index to read, ``data_version`` itself is polled, less often, since
each read is a round trip to the connection's thread.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from offload.backends.sqlite._connection import data_version, journal_mode

try:  # Linux only; without it, waits fall back to a short poll of the header
    from inotify_simple import INotify
    from inotify_simple import flags as inotify_flags
except ImportError:  # pragma: no cover - depends on the platform
    INotify = None

# Reading ``data_version`` is a round trip to the connection's thread (about a
# quarter of a millisecond of CPU): where it must be polled, not more often.
_DATA_VERSION_POLL_FLOOR = 0.05
# The WAL-index header: 48 bytes at the start of the -shm file, rewritten at
# every commit.
_WAL_HEADER_BYTES = 48
# With inotify saying when the WAL was written, the header is still read this
# often, in case a notification never comes (a watch the kernel dropped).
_NOTIFIED_POLL = 0.25


# wake-ups inside this process ------------------------------------------------------


@dataclass(eq=False)
class Waiter:
    loop: asyncio.AbstractEventLoop
    queues: frozenset[str]
    event: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by a write of this process; the event alone may also mean "the WAL
    # index moved", which still has to be confirmed.
    notified: bool = False

    def notify(self) -> None:
        self.notified = True
        self.event.set()


_waiters: dict[str, set[Waiter]] = {}
_waiters_lock = threading.Lock()
# Per file, how many wake-ups this process has sent: a waiter compares it with
# the count seen by the lease before it, so a write of this process that landed
# in between (on the same connection, which data_version cannot see) still counts.
_generations: dict[str, int] = {}


def notify(path: str, queues: Iterable[str] | None) -> None:
    """Wake the waiters of this database file for any of ``queues`` (all of them
    when ``None``), whichever instance, thread or loop they belong to."""
    wanted = None if queues is None else set(queues)
    with _waiters_lock:
        _generations[path] = _generations.get(path, 0) + 1
        waiters = [
            w for w in _waiters.get(path, ()) if wanted is None or not w.queues.isdisjoint(wanted)
        ]
    for waiter in waiters:
        if not waiter.loop.is_closed():
            waiter.loop.call_soon_threadsafe(waiter.notify)


def generation(path: str) -> int:
    with _waiters_lock:
        return _generations.get(path, 0)


def register(path: str, waiter: Waiter) -> None:
    with _waiters_lock:
        _waiters.setdefault(path, set()).add(waiter)


def unregister(path: str, waiter: Waiter) -> None:
    with _waiters_lock:
        waiters = _waiters.get(path)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del _waiters[path]


# commits of other processes --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """Where the file stood when a lease last looked: this process's wake-up
    count, the connection's data_version and the WAL-index header (``None``
    where it cannot be read)."""

    generation: int
    version: int
    header: bytes | None


def _watch_wal_file(path: str) -> INotify | None:
    """An inotify watch whose descriptor becomes readable whenever the ``-wal``
    file is written, or ``None`` where there is none (another OS, the package
    missing, the instance limit reached)."""
    if INotify is None:
        return None
    try:
        watch = INotify(nonblocking=True)
    except OSError:
        return None
    try:
        watch.add_watch(path + "-wal", inotify_flags.MODIFY)
    except OSError:
        watch.close()
        return None
    return watch


def _drain(fd: int) -> None:
    """Read and drop the pending notifications: only "something was written"
    matters, and the WAL-index header says whether it was a commit."""
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, OSError):
        pass


def _open_wal_index(conn: sqlite3.Connection, path: str) -> int | None:
    """A read-only descriptor of the file's WAL index, or ``None`` when there is
    none to watch (not in WAL mode, no ``pread``, another VFS)."""
    if not hasattr(os, "pread") or journal_mode(conn) != "wal":
        return None
    try:
        fd = os.open(path + "-shm", os.O_RDONLY)
    except OSError:
        return None
    if len(os.pread(fd, _WAL_HEADER_BYTES, 0)) < _WAL_HEADER_BYTES:
        os.close(fd)
        return None
    return fd


class _HeaderWatch:
    """One wait's watch of the WAL-index header: read when inotify reports a
    write to the WAL (where it can) and on a timer, with no task per look; the
    first value that differs is kept in ``moved`` and sets the waiter's event."""

    def __init__(
        self,
        waiter: Waiter,
        header: bytes,
        read: Callable[[], bytes | None],
        events: int | None,
        poll: float,
    ) -> None:
        self.waiter, self.header, self.read, self.events = waiter, header, read, events
        # With notifications the timer is only the safety net.
        self.poll = poll if events is None else max(poll, _NOTIFIED_POLL)
        self.moved: list[bytes] = []
        self.loop = waiter.loop
        self.handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.events is not None:
            # Writes before now are covered by the first look below; any later
            # one makes the descriptor readable.
            _drain(self.events)
            self.loop.add_reader(self.events, self._written)
        self._tick()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        if self.events is not None:
            self.loop.remove_reader(self.events)

    def _look(self) -> bool:
        now = self.read()
        if now == self.header:
            return False
        if not self.moved:
            self.moved.append(b"" if now is None else now)
            self.waiter.event.set()
        return True

    def _tick(self) -> None:
        if not self._look():
            self.handle = self.loop.call_later(self.poll, self._tick)

    def _written(self) -> None:
        if self.events is not None:
            _drain(self.events)
        self._look()


class CommitWatch:
    """One backend instance's view of its file: the WAL-index descriptor and
    the inotify watch, opened with the connection and closed with it."""

    def __init__(self, path: str, poll: float) -> None:
        self.path, self.poll = path, poll
        self._wal_index: int | None = None
        self._wal_events: INotify | None = None

    def open(self, conn: sqlite3.Connection) -> None:
        """On the connection's thread, right after it was opened."""
        self._wal_index = _open_wal_index(conn, self.path)
        if self._wal_index is not None:
            self._wal_events = _watch_wal_file(self.path)

    def close(self) -> None:
        if self._wal_index is not None:
            os.close(self._wal_index)
        if self._wal_events is not None:
            self._wal_events.close()
        self._wal_index = None
        self._wal_events = None

    def mark(self, conn: sqlite3.Connection) -> Mark:
        """On the connection's thread, under a write lock where the caller needs
        no commit to fall between its read and the mark."""
        return Mark(generation(self.path), data_version(conn), self._header())

    def _header(self) -> bytes | None:
        fd = self._wal_index
        if fd is None:
            return None
        try:
            return os.pread(fd, _WAL_HEADER_BYTES, 0)
        except OSError:
            return None

    async def wait(
        self,
        waiter: Waiter,
        mark: Mark,
        timeout: float,
        version: Callable[[], Awaitable[int | None]],
    ) -> None:
        """Until a write of this process wakes ``waiter``, another connection
        commits after ``mark`` (``version`` reads data_version, ``None`` once
        the connection is gone), or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if generation(self.path) != mark.generation:
            return
        header = mark.header
        while not waiter.notified and (left := deadline - loop.time()) > 0:
            if header is None:
                seconds = min(left, max(self.poll, _DATA_VERSION_POLL_FLOOR))
                header = await _poll_version(waiter, seconds)
            else:
                header = await self._watch(waiter, header, left)
            if header is None:
                return
            # Something committed; confirm it was not this connection.
            current = await version()
            if current is None or current != mark.version:
                return
            if header == b"":
                header = None

    async def _watch(self, waiter: Waiter, header: bytes, left: float) -> bytes | None:
        """Until the WAL-index header differs from ``header`` (its new value, or
        ``b""`` once it cannot be read), a wake-up of this process or the end of
        ``left`` seconds (``None``)."""
        events = None if self._wal_events is None else self._wal_events.fileno()
        watch = _HeaderWatch(waiter, header, self._header, events, self.poll)
        watch.start()
        try:
            if not watch.moved:
                await asyncio.wait_for(waiter.event.wait(), left)
        except TimeoutError:
            return None
        finally:
            watch.stop()
        if waiter.notified or not watch.moved:
            return None
        waiter.event.clear()
        return watch.moved[0]


async def _poll_version(waiter: Waiter, seconds: float) -> bytes | None:
    """Without a WAL index: ``b""`` after ``seconds`` (time to read
    data_version), ``None`` when woken first."""
    try:
        await asyncio.wait_for(waiter.event.wait(), seconds)
    except TimeoutError:
        return b""
    return None
