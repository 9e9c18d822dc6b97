"""Statement text rendered from ``offload.lifecycle``: what a transition writes.

``queries.sql`` does not spell out what a transition does to a job; it names the
transition and this module writes the SQL from the ``Transition``'s fields when
the file is loaded (once per process), so the statements cannot drift from the
lifecycle and cost nothing extra at run time. The tokens:

``{set:NAME key=expr ...}``
    the SET list of transition ``NAME`` (an attribute of ``offload.lifecycle``)
    for an UPDATE of alias ``j``: state, attempts, run_at, lease, error,
    finished_at, result and checkpoint, as its effect fields say.
``{set:A if COND else B}``
    one SET list applying ``A`` to the rows where ``COND`` holds, ``B`` to the rest.
``{stamps:NAME alias key=expr ...}`` (also ``{stamps:A if COND else B alias ...}``)
    the jsonb object of the transition's stamps, read from the updated row
    ``alias``; ``'{}'::jsonb`` when it has none. The caller's own part of the
    event data (``offload.event_data``) travels as a parameter and is joined
    to it with ``||`` in the statement.
``{sources:NAME}``, ``{target:NAME}``, ``{events:NAME}``
    the source states as literals (for ``IN (...)``), the target state as a
    literal, the event kinds as a ``text[]`` literal.
``{leased:NAME [data] [wake=due|always]}``
    a whole statement, for the transitions a worker applies to the job it
    leased: fenced by ``%(id)s``, ``%(sources)s`` and ``%(token)s``, the job
    updated, its events recorded (``data``: with the caller's ``%(data)s``), and
    the job's queue notified (``wake=due``: when it is due now). Expanded first
    (``statements``), so its text goes through the tokens above like the rest.

The values a transition is handed are parameters with fixed names (``INPUTS``),
which a token may replace by another expression (``result=g.result`` where a
batch reads them from an ``unnest``). A token the module cannot render fails
when the file is loaded, naming the token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from offload import lifecycle as lc
from offload.errors import ConfigurationError
from offload.lifecycle import Attempts, ErrorEffect, LeaseEffect, RunAt, Stamp, Transition

INPUTS = {
    "worker": "%(worker)s::text",
    "lease_for": "%(lease_for)s::float8",
    "delay": "%(delay)s::float8",
    "error": "%(error)s::jsonb",
    "result": "%(result)s::bytea",
    "checkpoint": "%(checkpoint)s::bytea",
}
"""The parameters a SET list reads the handed values from, by default."""

_TOKEN = re.compile(r"\{(set|stamps|sources|target|events):([^{}]+)\}")
_CHOICE = re.compile(r"(\w+) if (\S+) else (\w+)(.*)", re.DOTALL)

Assignments = dict[str, str]


def render(text: str) -> str:
    """``text`` with every transition token replaced by its SQL."""
    return _TOKEN.sub(_expand, text)


_LEASED = re.compile(r"\{leased:([^{}]+)\}")
_LEASED_STATEMENT = """WITH done AS (
    UPDATE {{schema}}.jobs AS j
    SET {{set:{name}}}
    WHERE j.id = %(id)s AND j.state = ANY(%(sources)s::text[]) AND j.lease_token = %(token)s
    RETURNING {{job_columns}}
), recorded AS (
    INSERT INTO {{schema}}.events (job_id, tenant, kind, at, data)
    SELECT d.id::uuid, d.tenant, k.kind, now(), {data}{{stamps:{name} d}}
    FROM done AS d CROSS JOIN LATERAL unnest({{events:{name}}}) WITH ORDINALITY AS k(kind, n)
    ORDER BY k.n
){woken}
SELECT done.* FROM done{woken_from};"""
_WOKEN = """, woken AS (
    SELECT count(pg_notify(%(channel)s, d.queue)) AS n FROM done AS d{when}
)"""
_WAKE = {"due": " WHERE d.run_at <= now()", "always": ""}


def statements(text: str) -> str:
    """``text`` with every ``{leased:...}`` statement written out."""
    return _LEASED.sub(_expand_leased, text)


def _expand_leased(match: re.Match[str]) -> str:
    name, *options = match[1].split()
    _transition(name)
    data, wake = False, None
    for option in options:
        key, _, value = option.partition("=")
        if option == "data":
            data = True
        elif key == "wake" and value in _WAKE:
            wake = value
        else:
            raise ConfigurationError(f"cannot render {match[0]!r} in queries.sql: {option!r} is "
                                     "neither data nor wake=due|always")  # fmt: skip
    return _LEASED_STATEMENT.format(
        name=name,
        data="%(data)s::jsonb || " if data else "",
        woken="" if wake is None else _WOKEN.format(when=_WAKE[wake]),
        woken_from="" if wake is None else ", woken",
    )


def iso_utc(expr: str) -> str:
    """SQL turning timestamptz ``expr`` into what Python's ``isoformat()`` gives
    for the same instant in UTC. ``to_jsonb`` would follow the session's time
    zone and drop trailing zeros of the fraction, so a reader comparing stamps
    from two backends would see two spellings of one time."""
    utc = f"({expr} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE to_char({utc}, 'US') WHEN '000000' THEN '' ELSE to_char({utc}, '.US') END"
        " || '+00:00')"
    )


def set_list(t: Transition, inputs: Mapping[str, str] | None = None) -> Assignments:
    """Column to SQL expression for everything ``t`` writes to row ``j``."""
    given = INPUTS | dict(inputs or {})
    out: Assignments = {"state": f"'{t.target.value}'"}
    out |= _attempts(t.attempts) | _run_at(t.run_at, given) | _lease(t.lease, given)
    out |= _error(t.error, given)
    if t.sets_finished:
        out["finished_at"] = "now()"
    elif t.clears_finished:
        out["finished_at"] = "NULL"
    if t.stores_result:
        out["result"] = given["result"]
    if t.stores_checkpoint:
        out["checkpoint"] = f"COALESCE({given['checkpoint']}, j.checkpoint)"
    return out


def stamps(t: Transition, alias: str, inputs: Mapping[str, str] | None = None) -> str:
    """The jsonb object of ``t``'s stamps, read from row ``alias`` after the update.

    The worker a lease was taken from is gone from the updated row, so a
    transition that drops a lease and stamps the worker needs ``worker=expr``."""
    if not t.stamps:
        return "'{}'::jsonb"
    given = dict(inputs or {})
    values: dict[Stamp, Callable[[], str]] = {
        Stamp.ATTEMPT: lambda: f"{alias}.attempts",
        Stamp.WORKER: lambda: _worker(t, alias, given),
        Stamp.RUN_AT: lambda: iso_utc(f"{alias}.run_at"),
    }
    pairs = ", ".join(f"'{s.value}', {values[s]()}" for s in t.stamps)
    return f"jsonb_build_object({pairs})"


def sources(t: Transition) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(t.sources))


def events(t: Transition) -> str:
    return "ARRAY[" + ", ".join(f"'{e.value}'" for e in t.events) + "]::text[]"


def choose(cond: str, when: Assignments, otherwise: Assignments) -> Assignments:
    """One SET list from two: a column both write alike stays plain, any other
    becomes a CASE on ``cond`` (a column one of them leaves alone keeps ``j``'s)."""
    out: Assignments = {}
    for column in {**when, **otherwise}:
        yes, no = when.get(column, f"j.{column}"), otherwise.get(column, f"j.{column}")
        out[column] = yes if yes == no else f"CASE WHEN {cond} THEN {yes} ELSE {no} END"
    return out


def _attempts(effect: Attempts) -> Assignments:
    return {
        Attempts.KEEP: {},
        Attempts.COUNT: {"attempts": "j.attempts + 1"},
        Attempts.GIVE_BACK: {"attempts": "GREATEST(j.attempts - 1, 0)"},
        Attempts.RESET: {"attempts": "0"},
    }[effect]


def _run_at(effect: RunAt, given: Mapping[str, str]) -> Assignments:
    return {
        RunAt.KEEP: {},
        RunAt.NOW: {"run_at": "now()"},
        RunAt.AFTER: {"run_at": f"now() + make_interval(secs => {given['delay']})"},
    }[effect]


def _lease(effect: LeaseEffect, given: Mapping[str, str]) -> Assignments:
    if effect is LeaseEffect.GRANT:
        return {
            "worker_id": given["worker"],
            "lease_token": "replace(gen_random_uuid()::text, '-', '')",
            "lease_expires_at": f"now() + make_interval(secs => {given['lease_for']})",
            "started_at": "now()",
        }
    if effect is LeaseEffect.DROP:
        return {"lease_token": "NULL", "lease_expires_at": "NULL", "worker_id": "NULL",
                "cancel_requested": "false"}  # fmt: skip
    return {}


def _error(effect: ErrorEffect, given: Mapping[str, str]) -> Assignments:
    return {
        ErrorEffect.KEEP: {},
        ErrorEffect.SET: {"error": given["error"]},
        ErrorEffect.CLEAR: {"error": "NULL"},
    }[effect]


def _worker(t: Transition, alias: str, given: Mapping[str, str]) -> str:
    if "worker" in given:
        return given["worker"]
    if t.lease is LeaseEffect.GRANT:
        return f"{alias}.worker_id"
    raise ConfigurationError(
        f"the worker stamp of {t.name} needs worker=<expr>: the update took the lease away"
    )


# tokens ---------------------------------------------------------------------------


def _expand(match: re.Match[str]) -> str:
    kind, body = match[1], match[2].strip()
    try:
        return _RENDERERS[kind](body)
    except (KeyError, ValueError, ConfigurationError) as exc:
        raise ConfigurationError(f"cannot render {match[0]!r} in queries.sql: {exc}") from exc


def _render_set(body: str) -> str:
    first, cond, second, rest = _parts(body)
    inputs = _inputs(rest.split())
    assignments = set_list(first, inputs)
    if second is not None and cond is not None:
        assignments = choose(cond, assignments, set_list(second, inputs))
    return ", ".join(f"{column} = {expr}" for column, expr in assignments.items())


def _render_stamps(body: str) -> str:
    first, cond, second, rest = _parts(body)
    words = rest.split()
    if not words or "=" in words[0]:
        raise ValueError("a stamps token names the row alias after the transition")
    alias, inputs = words[0], _inputs(words[1:])
    rendered = stamps(first, alias, inputs)
    if second is None or cond is None:
        return rendered
    other = stamps(second, alias, inputs)
    return rendered if rendered == other else f"CASE WHEN {cond} THEN {rendered} ELSE {other} END"


def _parts(body: str) -> tuple[Transition, str | None, Transition | None, str]:
    choice = _CHOICE.fullmatch(body)
    if choice is not None:
        return _transition(choice[1]), choice[2], _transition(choice[3]), choice[4]
    name, _, rest = body.partition(" ")
    return _transition(name), None, None, rest


def _inputs(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        key, sep, expr = word.partition("=")
        if not sep or key not in INPUTS or not expr:
            raise ValueError(f"{word!r} is not input=expr with an input of {sorted(INPUTS)}")
        out[key] = expr
    return out


def _transition(name: str) -> Transition:
    found = getattr(lc, name, None)
    if not isinstance(found, Transition):
        raise ValueError(f"{name!r} is not a transition of offload.lifecycle")
    return found


_RENDERERS: dict[str, Callable[[str], str]] = {
    "set": _render_set,
    "stamps": _render_stamps,
    "sources": lambda body: sources(_transition(body)),
    "target": lambda body: f"'{_transition(body).target.value}'",
    "events": lambda body: events(_transition(body)),
}
