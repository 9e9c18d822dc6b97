"""Schema migrations: numbered SQL files applied once each, in order.

Two processes starting at once (two workers, a worker and a web server) both run
``migrate``; a session advisory lock keyed by the schema makes the second wait
for the first and then find nothing left to do, so nobody sees a half-built
schema or fails on ``CREATE TABLE`` of a table the other just made.
"""

from __future__ import annotations

from typing import Any

import psycopg

from offload.backends.postgres import _sql
from offload.backends.postgres._url import PostgresOptions, parse_url
from offload.errors import BackendError

_LOCK = b"SELECT pg_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = b"SELECT pg_advisory_unlock(hashtextextended(%s, 0))"


async def migrate(url: str) -> list[int]:
    """Bring the schema named by ``url`` (``?schema=``, default ``offload``) to
    the latest version; returns the versions this call applied (often none)."""
    options = parse_url(url)
    try:
        async with await psycopg.AsyncConnection.connect(options.conninfo, autocommit=True) as conn:
            return await migrate_connection(conn, options)
    except psycopg.Error as exc:
        raise BackendError(f"migrating PostgreSQL schema {options.schema!r} failed: {exc}") from exc


async def migrate_connection(conn: psycopg.AsyncConnection[Any], options: PostgresOptions
                             ) -> list[int]:  # fmt: skip
    """``migrate`` on an open autocommit connection (the backend's own at open)."""
    key = f"offload.migrate:{options.schema}"
    await conn.execute(_LOCK, (key,))
    try:
        return await _apply_missing(conn, options.schema)
    finally:
        await conn.execute(_UNLOCK, (key,))


async def _apply_missing(conn: psycopg.AsyncConnection[Any], schema: str) -> list[int]:
    quoted = f'"{_sql.check_schema(schema)}"'.encode()
    await conn.execute(b"CREATE SCHEMA IF NOT EXISTS " + quoted)
    await conn.execute(
        b"CREATE TABLE IF NOT EXISTS " + quoted + b".migrations ("
        b" version integer PRIMARY KEY, name text NOT NULL,"
        b" applied_at timestamptz NOT NULL DEFAULT now())"
    )
    cur = await conn.execute(b"SELECT version FROM " + quoted + b".migrations")
    done = {int(row[0]) for row in await cur.fetchall()}
    applied = []
    for migration in _sql.migrations(schema):
        if migration.version in done:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                b"INSERT INTO " + quoted + b".migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        applied.append(migration.version)
    return applied
