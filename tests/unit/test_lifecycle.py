"""The transition table: who may move where, and what each move records."""

from __future__ import annotations

import pytest

from offload import lifecycle as lc
from offload.lifecycle import ENDED, WAITING, EventKind, State, Transition

S, E = State, EventKind

TABLE: dict[Transition, tuple[set[State], State, tuple[EventKind, ...], bool]] = {
    lc.ENQUEUE: (set(), S.QUEUED, (E.ENQUEUED,), False),
    lc.ENQUEUE_LATER: (set(), S.SCHEDULED, (E.SCHEDULED,), False),
    lc.START: ({S.QUEUED, S.SCHEDULED}, S.RUNNING, (E.STARTED,), False),
    lc.SUCCEED: ({S.RUNNING}, S.SUCCEEDED, (E.SUCCEEDED,), True),
    lc.RETRY: ({S.RUNNING}, S.SCHEDULED, (E.FAILED, E.RETRY_SCHEDULED), True),
    lc.FAIL: ({S.RUNNING}, S.DEAD, (E.FAILED, E.DEAD), True),
    lc.REJECT: ({S.RUNNING}, S.DEAD, (E.DEAD,), True),
    lc.REQUEUE: ({S.RUNNING}, S.QUEUED, (E.REQUEUED,), True),
    lc.SNOOZE: ({S.RUNNING}, S.SCHEDULED, (E.SNOOZED,), True),
    lc.CANCEL_WAITING: ({S.SCHEDULED, S.QUEUED}, S.CANCELLED, (E.CANCELLED,), False),
    lc.CANCEL_RUNNING: ({S.RUNNING}, S.CANCELLED, (E.CANCELLED,), True),
    lc.EXPIRE: ({S.RUNNING}, S.QUEUED, (E.LEASE_EXPIRED,), False),
    lc.EXPIRE_DEAD: ({S.RUNNING}, S.DEAD, (E.LEASE_EXPIRED, E.DEAD), False),
    lc.EXPIRE_CANCELLED: ({S.RUNNING}, S.CANCELLED, (E.LEASE_EXPIRED, E.CANCELLED), False),
    lc.REDRIVE: ({S.DEAD, S.CANCELLED}, S.QUEUED, (E.RETRIED,), False),
    lc.RELEASE: ({S.SCHEDULED}, S.QUEUED, (E.RELEASED,), False),
    lc.CANCEL_DEPENDENT: ({S.SCHEDULED}, S.CANCELLED, (E.CANCELLED,), False),
    lc.DISCARD: ({S.RUNNING}, S.CANCELLED, (E.FAILED, E.DISCARDED), True),
    lc.DISCARD_REJECTED: ({S.RUNNING}, S.CANCELLED, (E.DISCARDED,), True),
    lc.EXPIRE_DISCARD: ({S.RUNNING}, S.CANCELLED, (E.LEASE_EXPIRED, E.DISCARDED), False),
}


def test_all_lists_every_transition_once() -> None:
    assert set(lc.ALL) == set(TABLE)
    assert len(lc.ALL) == len(TABLE)
    assert len({t.name for t in lc.ALL}) == len(lc.ALL)


@pytest.mark.parametrize("transition", lc.ALL, ids=lambda t: t.name)
def test_sources_target_events_and_lease_guard(transition: Transition) -> None:
    sources, target, events, leased = TABLE[transition]
    assert transition.sources == frozenset(sources)
    assert transition.target is target
    assert transition.events == events
    assert transition.leased is leased


@pytest.mark.parametrize("transition", lc.ALL, ids=lambda t: t.name)
def test_allows_exactly_its_sources(transition: Transition) -> None:
    assert {s for s in State if transition.allows(s)} == transition.sources


def test_ended_and_waiting_states() -> None:
    assert frozenset({S.SUCCEEDED, S.CANCELLED, S.DEAD}) == ENDED
    assert frozenset({S.SCHEDULED, S.QUEUED}) == WAITING
    assert [s for s in State if s.ended] == [S.SUCCEEDED, S.CANCELLED, S.DEAD]


def test_only_redrive_leaves_an_ended_state() -> None:
    leaving = {t for t in lc.ALL if t.sources & ENDED}
    assert leaving == {lc.REDRIVE}


def test_every_transition_from_running_except_expiry_needs_the_lease() -> None:
    from_running = {t for t in lc.ALL if S.RUNNING in t.sources}
    unleased = {t for t in from_running if not t.leased}
    assert unleased == {lc.EXPIRE, lc.EXPIRE_DEAD, lc.EXPIRE_CANCELLED, lc.EXPIRE_DISCARD}


def test_every_state_is_reachable_and_every_transition_records_an_event() -> None:
    assert {t.target for t in lc.ALL} == set(State)
    assert all(t.events for t in lc.ALL)


def test_states_are_plain_strings() -> None:
    assert S.QUEUED == "queued"
    assert f"{S.DEAD}" == "dead"
    assert State("running") is S.RUNNING
