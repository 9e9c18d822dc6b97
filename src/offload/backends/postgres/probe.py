"""One direct connection before the pool starts, so first contact fails fast.

A pool that cannot connect retries in the background and logs a warning per
attempt until its timeout; a user who mistyped a host then waits and reads four
warnings before the error. The probe connects once with a short timeout and
turns the failure into one line naming host, port, database and cause. It also
tells ``?migrate=false`` on a schema that was never migrated apart from any other
missing table, so the error can say what to run.
"""

from __future__ import annotations

from typing import Any

import psycopg

from offload.backends.postgres._url import PostgresOptions
from offload.errors import BackendError

# libpq's own floor is 2 seconds; a server that answers does so well within 5.
_CONNECT_TIMEOUT = 5


async def probe(options: PostgresOptions, where: str) -> None:
    timeout = max(2, min(_CONNECT_TIMEOUT, int(options.pool_timeout)))
    try:
        conn = await psycopg.AsyncConnection.connect(
            options.conninfo, autocommit=True, connect_timeout=timeout
        )
    except psycopg.Error as exc:
        raise BackendError(f"cannot connect to PostgreSQL at {where}: {_cause(exc)}") from None
    async with conn:
        if not options.migrate and not await _migrated(conn, options.schema):
            raise BackendError(
                f"PostgreSQL schema {options.schema!r} at {where} has no offload tables and "
                "?migrate=false forbids creating them: run `offload migrate` (with the same "
                "--backend URL) once, or drop ?migrate=false"
            )


async def _migrated(conn: psycopg.AsyncConnection[Any], schema: str) -> bool:
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.jobs",))
    row = await cursor.fetchone()
    return bool(row and row[0])


def _cause(exc: psycopg.Error) -> str:
    """libpq's message, first line only: the rest repeats it per address tried."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
