"""Pure parts of dependencies and workflows: cycle checks, the release decision,
and the edges the chain / group / chord / DAG sugar draws."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from offload import DependencyError, NewJob, chain, chord, dag, group, step
from offload import lifecycle as lc
from offload.dependencies import WAITING_UNTIL, check_acyclic, decide
from offload.job import Job
from offload.lifecycle import State


def new(name: str, *deps: str) -> NewJob:
    return NewJob(id=name, task=f"tests.{name}", payload=b"{}", depends_on=deps)


def stored(name: str, state: State, *deps: str, policy: str = "cancel") -> Job:
    now = datetime.now(UTC)
    meta = {"depends_on": list(deps), "on_parent_failure": policy} if deps else {}
    return Job(id=name, task="t", queue="q", tenant="t", state=state, payload=b"{}",
               priority=0, attempts=0, max_attempts=1, created_at=now,
               run_at=WAITING_UNTIL if deps else now, meta=meta)  # fmt: skip


def test_a_dag_passes_and_every_cycle_is_named() -> None:
    check_acyclic([new("a"), new("b", "a"), new("c", "a", "b"), new("d", "c", "b")])
    with pytest.raises(DependencyError, match="a -> c -> b -> a"):
        check_acyclic([new("a", "c"), new("b", "a"), new("c", "b")])
    with pytest.raises(DependencyError, match="depends on itself"):
        check_acyclic([new("a", "a")])


def test_a_wide_join_is_checked_in_one_pass() -> None:
    leaves = [new(f"l{i}") for i in range(20_000)]
    check_acyclic([*leaves, new("join", *(leaf.id for leaf in leaves))])


def test_decide_waits_releases_or_cancels() -> None:
    child = stored("c", State.SCHEDULED, "a", "b")
    running = {"a": stored("a", State.SUCCEEDED), "b": stored("b", State.RUNNING)}
    assert decide(child, running) is None
    ok = {"a": stored("a", State.SUCCEEDED), "b": stored("b", State.SUCCEEDED)}
    assert decide(child, ok) == (lc.RELEASE, {"parents": {"a": "succeeded", "b": "succeeded"}})
    bad = {"a": stored("a", State.SUCCEEDED), "b": stored("b", State.DEAD)}
    transition, data = decide(child, bad) or (None, {})
    assert (transition, data["reason"]) == (lc.CANCEL_DEPENDENT, "parent b dead")
    anyway = stored("c", State.SCHEDULED, "a", "b", policy="run")
    assert decide(anyway, bad) == (lc.RELEASE, {"parents": {"a": "succeeded", "b": "dead"}})
    assert decide(child, {"b": stored("b", State.SUCCEEDED)}) == (
        lc.RELEASE, {"parents": {"a": "purged", "b": "succeeded"}})  # fmt: skip


def test_chain_group_and_chord_draw_their_edges() -> None:
    a, b, c, d = new("a"), new("b"), new("c"), new("d")
    graph = chain(a, group(b, c), d)
    ids = {name: job.id for name, job in graph.jobs.items()}
    edges = {(ids[p], ids[n]) for n, parents in graph.after.items() for p in parents}
    assert edges == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    fan = chord([a, b], c)
    assert sorted(fan.after[fan.tails[0]]) == sorted(fan.heads)


def test_a_dag_names_its_steps_and_refuses_unknown_ones() -> None:
    graph = dag({"x": new("a"), "y": step(new("b"), after="x")})
    assert dict(graph.after) == {"x": (), "y": ("x",)}
    with pytest.raises(DependencyError, match="which is no step"):
        dag({"y": step(new("b"), after=["nope"])})
    with pytest.raises(DependencyError, match="not a prepared job"):
        dag({"y": "b"})  # type: ignore[dict-item]
