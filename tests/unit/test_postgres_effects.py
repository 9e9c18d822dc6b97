"""The PostgreSQL statements are rendered from the lifecycle, not written beside it."""

from __future__ import annotations

import pytest

from offload import lifecycle as lc
from offload.backends.postgres import _effects, _sql
from offload.errors import ConfigurationError


def test_a_set_list_writes_exactly_the_effect_fields() -> None:
    assert _effects.set_list(lc.SNOOZE) == {
        "state": "'scheduled'",
        "attempts": "GREATEST(j.attempts - 1, 0)",
        "run_at": "now() + make_interval(secs => %(delay)s::float8)",
        "lease_token": "NULL",
        "lease_expires_at": "NULL",
        "worker_id": "NULL",
        "cancel_requested": "false",
    }


def test_a_handed_value_may_come_from_another_expression() -> None:
    assert _effects.set_list(lc.SUCCEED, {"result": "g.result"})["result"] == "g.result"


def test_a_choice_keeps_common_writes_plain_and_cases_the_rest() -> None:
    chosen = _effects.choose("e.last", _effects.set_list(lc.EXPIRE_DEAD),
                             _effects.set_list(lc.EXPIRE))  # fmt: skip
    assert chosen["lease_token"] == "NULL"
    assert chosen["state"] == "CASE WHEN e.last THEN 'dead' ELSE 'queued' END"
    assert chosen["run_at"] == "CASE WHEN e.last THEN j.run_at ELSE now() END"


def test_stamps_follow_the_transition_in_its_order() -> None:
    assert _effects.stamps(lc.START, "s") == (
        "jsonb_build_object('attempt', s.attempts, 'worker', s.worker_id)"
    )
    assert _effects.stamps(lc.SUCCEED, "d") == "'{}'::jsonb"


def test_a_worker_stamp_after_the_lease_was_dropped_must_be_named() -> None:
    with pytest.raises(ConfigurationError, match="worker=<expr>"):
        _effects.stamps(lc.EXPIRE, "m")
    assert "m.prior" in _effects.stamps(lc.EXPIRE, "m", {"worker": "m.prior"})


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("{set:NOPE}", "not a transition"),
        ("{set:RETRY delay}", "input=expr"),
        ("{set:RETRY colour=red}", "input=expr"),
        ("{stamps:RETRY}", "row alias"),
    ],
)
def test_a_token_that_cannot_be_rendered_is_refused_by_name(token: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        _effects.render(f"SELECT {token}")
    assert token in str(caught.value)


def test_every_leased_transition_has_its_statement() -> None:
    rendered = _sql.queries("offload")
    batched = {lc.SUCCEED}  # applied many at a time by job_complete_many
    for t in lc.ALL:
        if t.leased and t not in batched:
            assert f"job_{t.name}" in rendered, t.name


def test_no_token_is_left_in_any_statement() -> None:
    for name, text in _sql.queries("offload").items():
        for kind in ("{set:", "{stamps:", "{sources:", "{target:", "{events:"):
            assert kind.encode() not in text, name
