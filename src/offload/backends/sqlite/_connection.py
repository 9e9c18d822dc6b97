"""Opening the file: WAL mode, the synchronous setting, the schema's migrations,
and the one way a write transaction is run.

``PRAGMA user_version`` records how many migrations a file has had, in the same
transaction that applies them; files written before the migrations became
``sql/migrations/*.sql`` recorded the same numbers the same way, so they open
as they are.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from offload.backends.sqlite import _sql
from offload.backends.sqlite._url import SQLiteOptions
from offload.errors import ConfigurationError

SCHEMA_VERSION = len(_sql.migrations())


def connect(options: SQLiteOptions, *, any_thread: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), migrated.
    ``any_thread``: its user lets one thread at a time use it, from any thread."""
    Path(options.path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        options.path,
        timeout=options.busy_timeout,
        isolation_level=None,
        check_same_thread=not any_thread,
    )
    try:
        _ensure_wal(conn, options.busy_timeout)
        conn.execute(f"PRAGMA synchronous = {options.synchronous.upper()}")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_wal(conn: sqlite3.Connection, wait: float) -> None:
    """WAL is a property of the file, so only the first connection switches it.
    The switch takes a lock that SQLite's busy handler does not always wait for
    (it answers "database is locked" at once while another connection writes),
    so a connection that finds WAL on skips it, and one that must switch retries
    within the busy timeout."""
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        if journal_mode(conn) == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Bring the file to ``SCHEMA_VERSION``; the version is re-read under the
    write lock so that processes opening a new file at once migrate it once.
    Returns the versions this call applied (often none)."""
    if _user_version(conn) == SCHEMA_VERSION:
        return []
    with transaction(conn):
        version = _user_version(conn)
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the SQLite file has schema version {version}, newer than this "
                f"offload's {SCHEMA_VERSION}: upgrade offload"
            )
        missing = _sql.migrations()[version:]
        for migration in missing:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return [migration.version for migration in missing]


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error. IMMEDIATE takes
    the write lock before the first read, so processes sharing the file queue up
    on ``busy_timeout`` instead of deadlocking on a lock upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the file."""
    version: int = conn.execute("PRAGMA data_version").fetchone()[0]
    return version
