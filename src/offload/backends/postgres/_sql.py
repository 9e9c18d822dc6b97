"""The SQL files as data: named queries and numbered migrations, rendered per schema.

The files are read once per process and rendered once per schema, so a backend
never builds SQL at run time; the only values spliced in are the quoted schema
name, the column lists of jobs, schedules and batches, and state literals and
transition effects (``_effects``) taken from ``offload.lifecycle``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from offload import lifecycle as lc
from offload.backends import sqlfiles
from offload.backends.postgres import _effects
from offload.errors import ConfigurationError
from offload.lifecycle import State

COLUMNS = (
    "id", "task", "queue", "tenant", "state", "payload", "priority", "attempts",
    "max_attempts", "created_at", "run_at", "timeout", "started_at", "finished_at",
    "result", "error", "checkpoint", "progress", "progress_message", "unique_key",
    "batch_id", "worker_id", "lease_token", "lease_expires_at", "cancel_requested", "meta",
)  # fmt: skip
"""The order in which every query returns a job; ``_rows.job`` reads it."""

SCHEDULE_COLUMNS = (
    "tenant", "id", "task", "payload", "cron", "timezone", "queue", "priority",
    "max_attempts", "timeout", "unique_job", "next_run_at", "last_run_at", "last_job_id",
    "created_at", "updated_at", "meta", "description",
)  # fmt: skip
"""The order in which queries return a schedule (alias ``s``); ``_rows.schedule`` reads it."""

BATCH_COLUMNS = (
    "id", "tenant", "created_at", "name", "then_jobs", "finished_at", "continuation_ids", "meta",
)  # fmt: skip
"""The order in which queries return a batch (alias ``b``), before its counts;
``_rows.batch`` reads it."""

_PACKAGE = "offload.backends.postgres"
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,54}")

# The partial indexes of 0001_initial.sql hard-code these sets; if the lifecycle
# moves, a new migration must move the indexes with it.
_INDEXED = {
    "ready": (lc.START.sources, {State.QUEUED, State.SCHEDULED}),
    "expiring": (lc.EXPIRE.sources | lc.EXPIRE_DEAD.sources, {State.RUNNING}),
    "live": (frozenset(State) - lc.ENDED, {State.SCHEDULED, State.QUEUED, State.RUNNING}),
}
for _index, (_actual, _assumed) in _INDEXED.items():
    if set(_actual) != _assumed:  # pragma: no cover - guards a future edit
        raise RuntimeError(f"lifecycle no longer matches the {_index} index of the schema")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: bytes


def check_schema(schema: str) -> str:
    """The schema name, refused unless it is a plain identifier that also leaves
    room for the notification channel name within PostgreSQL's 63 bytes."""
    if not _SCHEMA.fullmatch(schema):
        raise ConfigurationError(
            f"invalid PostgreSQL schema name {schema!r}: use letters, digits and _ "
            "(at most 55 characters, not starting with a digit)"
        )
    return schema


def channel(schema: str) -> str:
    """The NOTIFY channel of one schema: backends on other schemas never wake."""
    return f"offload_{check_schema(schema)}"


def _render(text: str, schema: str) -> str:
    text = _effects.statements(text)
    tokens = {
        "{schema}": f'"{check_schema(schema)}"',
        "{job_columns}": ", ".join("j.id::text AS id" if c == "id" else f"j.{c}" for c in COLUMNS),
        "{schedule_columns}": ", ".join(f"s.{c}" for c in SCHEDULE_COLUMNS),
        "{batch_columns}": ", ".join(f"b.{c}" for c in BATCH_COLUMNS),
        "{RUNNING}": State.RUNNING.value,
    }
    for token, value in tokens.items():
        text = text.replace(token, value)
    return _effects.render(text)


_FRAGMENT = "fragment_"


def _query_texts() -> dict[str, str]:
    """The statements with every ``{fragment_x}`` replaced by the section named
    ``fragment_x``: text two statements share, kept once, never run alone."""
    texts = sqlfiles.named_queries(_PACKAGE)
    fragments = {f"{{{n}}}": t for n, t in texts.items() if n.startswith(_FRAGMENT)}
    out = {}
    for name, text in texts.items():
        if name.startswith(_FRAGMENT):
            continue
        for token, fragment in fragments.items():
            text = text.replace(token, fragment)
        out[name] = text
    return out


@functools.cache
def queries(schema: str) -> dict[str, bytes]:
    """Every named query, rendered for ``schema`` (bytes: psycopg takes them as is)."""
    return {name: _render(text, schema).encode() for name, text in _query_texts().items()}


def _migration_texts() -> tuple[sqlfiles.MigrationText, ...]:
    return sqlfiles.migrations(_PACKAGE)


def migrations(schema: str) -> list[Migration]:
    """The migrations in version order, rendered for ``schema``."""
    return [
        Migration(version, name, _render(text, schema).encode())
        for version, name, text in _migration_texts()
    ]
