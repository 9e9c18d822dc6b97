"""The SQL files as data, rendered once per process.

``sql/queries.sql`` and ``sql/migrations/`` are read by the loader both SQL
backends share; the only values spliced in are column lists, state literals and,
for each transition, the statement its effect fields say (``transition``), all
taken from ``offload.lifecycle`` when this module is imported, so a guard or an
effect cannot drift from the table. No SQL is built while jobs run, except the
choice among a listing's filters, cached per combination.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from offload import lifecycle as lc
from offload.backends import sqlfiles
from offload.lifecycle import Attempts, ErrorEffect, LeaseEffect, RunAt, Stamp, State, Transition

_PACKAGE = "offload.backends.sqlite"

JOB_COLUMNS = (
    "id, task, queue, tenant, state, payload, priority, attempts, max_attempts, "
    "created_at, run_at, timeout, started_at, finished_at, result, error, checkpoint, "
    "progress, progress_message, unique_key, batch_id, worker_id, lease_token, "
    "lease_expires_at, cancel_requested, meta"
)
"""Column order follows ``Job``, so that a row reads like the dataclass."""

SCHEDULE_COLUMNS = (
    "id, task, payload, cron, next_run_at, tenant, timezone, queue, priority, max_attempts, "
    "timeout, is_unique, last_run_at, last_job_id, created_at, updated_at, meta, description"
)
WORKER_COLUMNS = "id, hostname, pid, queues, concurrency, started_at, job_ids, last_seen_at, meta"

# What each effect field writes; ``:now`` is the backend's clock and ``:span``
# the seconds the caller handed in (a lease's length, a delay), in microseconds.
_ATTEMPTS = {
    Attempts.KEEP: (),
    Attempts.COUNT: ("attempts = attempts + 1",),
    Attempts.GIVE_BACK: ("attempts = max(attempts - 1, 0)",),
    Attempts.RESET: ("attempts = 0",),
}
_RUN_AT = {
    RunAt.KEEP: (),
    RunAt.NOW: ("run_at = :now",),
    RunAt.AFTER: ("run_at = :now + :span",),
}
_LEASE = {
    LeaseEffect.KEEP: (),
    LeaseEffect.GRANT: (
        "worker_id = :worker", "lease_token = lower(hex(randomblob(16)))",
        "lease_expires_at = :now + :span", "started_at = :now",
    ),
    LeaseEffect.DROP: (
        "worker_id = NULL", "lease_token = NULL", "lease_expires_at = NULL",
        "cancel_requested = 0",
    ),
}  # fmt: skip
_ERROR = {
    ErrorEffect.KEEP: (),
    ErrorEffect.SET: ("error = :error",),
    ErrorEffect.CLEAR: ("error = NULL",),
}


# A due time as ``datetime.isoformat()`` writes a UTC one: microseconds only
# when there are some, and the offset spelled out.
_ISO_RUN_AT = (
    "strftime('%Y-%m-%dT%H:%M:%S', run_at / 1000000, 'unixepoch')"
    " || CASE WHEN run_at % 1000000 = 0 THEN '' ELSE printf('.%06d', run_at % 1000000) END"
    " || '+00:00'"
)
# What each stamp is, read from the row as the statement leaves it; the worker
# is the ``:worker`` parameter, since a DROP has cleared it from the row.
_STAMPS = {Stamp.ATTEMPT: "attempts", Stamp.WORKER: ":worker", Stamp.RUN_AT: _ISO_RUN_AT}


def stamps(t: Transition) -> str:
    """The SQL twin of ``event_data.stamped`` for ``t``: a JSON object of ``t``'s
    stamps, returned by the statement that applies ``t`` (``{}`` when none)."""
    pairs = ", ".join(f"'{stamp.value}', {_STAMPS[stamp]}" for stamp in t.stamps)
    return f"json_object({pairs})"


def states(members: Iterable[State]) -> str:
    """An SQL list literal of state names, for guards and partial indexes."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(members)) + ")"


def effects(t: Transition) -> str:
    """The SET list that writes ``t``'s effect fields, ``state`` included."""
    sets = [f"state = '{t.target.value}'"]
    sets += [*_ATTEMPTS[t.attempts], *_RUN_AT[t.run_at], *_LEASE[t.lease], *_ERROR[t.error]]
    if t.sets_finished:
        sets.append("finished_at = :now")
    elif t.clears_finished:
        sets.append("finished_at = NULL")
    if t.stores_result:
        sets.append("result = :result")
    if t.stores_checkpoint:
        sets.append("checkpoint = COALESCE(:checkpoint, checkpoint)")
    return ", ".join(sets)


def _enqueue_kinds(enqueues: Sequence[Transition]) -> str:
    """Rows (rowid, position, id, tenant, kind, created_at) of the events of
    every job inserted after rowid ``:last``, one SELECT per event position."""
    for t in enqueues:
        if t.stamps:  # pragma: no cover - guards a future edit of the lifecycle
            raise RuntimeError(f"{t.name} stamps its events; job_enqueue_events writes none")
    selects = []
    for position in range(max(len(t.events) for t in enqueues)):
        whens = " ".join(
            f"WHEN '{t.target.value}' THEN '{t.events[position].value}'"
            for t in enqueues
            if position < len(t.events)
        )
        selects.append(
            f"SELECT rowid AS r, {position} AS p, id, tenant, CASE state {whens} END AS kind, "
            "created_at FROM jobs WHERE rowid > :last"
        )
    return " UNION ALL ".join(selects)


def _strip(text: str) -> str:
    """Drops comment lines, so that each statement reaches SQLite as SQL alone."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def _render(text: str) -> str:
    tokens = {
        "{batch_select}": _strip(sqlfiles.named_queries(_PACKAGE)["batch_select"]),
        "{job_columns}": JOB_COLUMNS,
        "{schedule_columns}": SCHEDULE_COLUMNS,
        "{worker_columns}": WORKER_COLUMNS,
        "{LEASABLE}": states(lc.START.sources),
        "{RUNNING}": states(lc.CANCEL_RUNNING.sources),
        "{ENDED}": states(lc.ENDED),
        "{START_EFFECTS}": effects(lc.START),
        "{START_STAMPS}": stamps(lc.START),
        "{ENQUEUE_KINDS}": _enqueue_kinds((lc.ENQUEUE, lc.ENQUEUE_LATER)),
    }
    text = _strip(text)
    for token, value in tokens.items():
        text = text.replace(token, value)
    return text


@functools.cache
def queries() -> dict[str, str]:
    """Every named statement, rendered."""
    return {name: _render(text) for name, text in sqlfiles.named_queries(_PACKAGE).items()}


Q = queries()
"""The statements, by the name they have in ``sql/queries.sql``."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _split(script: str) -> tuple[str, ...]:
    """One statement per item: ``executescript`` would commit the transaction
    a migration runs in, so the script is cut where SQLite says a statement ends."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise RuntimeError(f"an SQLite migration ends inside a statement: {pending.strip()!r}")
    return tuple(out)


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """The migrations in version order, rendered and cut into statements."""
    return tuple(
        Migration(version, name, _split(_render(text)))
        for version, name, text in sqlfiles.migrations(_PACKAGE)
    )


# A redriven job would hold its unique key again; while another live job holds it,
# the redrive is refused rather than letting two live jobs share one key.
_KEY_FREE = (
    " AND (unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS other"
    " WHERE other.tenant = jobs.tenant AND other.unique_key = jobs.unique_key"
    f" AND other.state NOT IN {states(lc.ENDED)}))"
)
TENANT = " AND tenant = COALESCE(:tenant, tenant)"
"""Guard of a transition asked for by id from outside: only the caller's tenant's job."""
LEASE_TOKEN = " AND lease_token = :token"
"""Guard of a transition that is not ``leased`` but must find the lease it read."""
KEY_FREE = TENANT + _KEY_FREE
"""Guard of REDRIVE: the tenant's job, and its unique key not held by a live job."""


@functools.cache
def transition(t: Transition, guard: str = "", returning: str = JOB_COLUMNS) -> str:
    """The one statement that applies ``t``: its effects, guarded by its sources,
    the caller's lease token when ``t.leased``, and ``guard``; it returns
    ``returning`` and then the JSON of ``t``'s stamps."""
    parts = {
        "{effects}": effects(t),
        "{sources}": states(t.sources),
        "{fence}": " AND lease_token = :token" if t.leased else "",
        "{guard}": guard,
        "{returning}": returning,
        "{stamps}": stamps(t),
    }
    text = Q["job_transition"]
    for token, value in parts.items():
        text = text.replace(token, value)
    return text


_LIST_FILTERS = (
    "tenant = ?",
    "state IN (SELECT value FROM json_each(?))",
    "queue = ?",
    "task = ?",
    "id < ?",
    "batch_id = ?",
)
"""Filters of ``job_list``, in the order their parameters are bound."""

_BATCH_FILTERS = ("tenant = ?", "finished_at IS NULL", "id < ?")
"""Filters of ``batch_list``, in the order their parameters are bound."""


def _where(filters: Sequence[str], present: Sequence[bool]) -> str:
    chosen = [f for f, on in zip(filters, present, strict=True) if on]
    return "WHERE " + " AND ".join(chosen) if chosen else ""


@functools.lru_cache(maxsize=64)  # every subset of the six filters
def job_list(present: tuple[bool, ...]) -> str:
    """The listing with only the filters in use, so each can use its index."""
    return Q["job_list"].replace("{where}", _where(_LIST_FILTERS, present))


@functools.lru_cache(maxsize=8)  # every subset of the three filters
def batch_list(present: tuple[bool, ...]) -> str:
    return Q["batch_list"].replace("{where}", _where(_BATCH_FILTERS, present))


_TOKEN = re.compile(r"\{\w+\}")
for _name, _text in Q.items():  # pragma: no cover - guards a future edit of the file
    _left = set(_TOKEN.findall(_text)) - {
        "{effects}", "{sources}", "{fence}", "{guard}", "{returning}", "{stamps}", "{where}",
    }  # fmt: skip
    if _left:
        raise RuntimeError(f"queries.sql {_name}: unknown tokens {sorted(_left)}")
