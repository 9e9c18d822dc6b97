"""The invariants I1-I4 of docs/reliability.md, checked against the ledger and
the backend's own record after a scenario.

Each check returns the violations it found as sentences (an empty list when
the invariant holds), so a failing scenario or soak prints all of them at once.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

from offload import App, Job, State
from offload.testing import wait_for_job
from tests.faults.ledger import Execution, Ledger

KILLS = frozenset({"kill", "sigkill", "poison", "crash", "exited"})
"""Ledger faults that end a process: the first one of a pid says when ("exited"
is the soak noticing a death, so it may come later than the death)."""


def i1_terminal(
    jobs: Mapping[str, Job], runs: Iterable[Execution], allowed: Collection[State]
) -> list[str]:
    """Every accepted job ended once, and the ledger agrees with its final state:
    a succeeded job has a run that returned, a dead one carries its reason."""
    ok = {r.job_id for r in runs if r.outcome == "ok"}
    out: list[str] = []
    for job_id, job in jobs.items():
        if job.state not in allowed:
            out.append(f"I1 {job_id}: ended {job.state}, expected one of {sorted(allowed)}")
        elif job.state is State.SUCCEEDED and job_id not in ok:
            out.append(f"I1 {job_id}: succeeded but no run in the ledger returned")
        elif job.state is State.DEAD and job.error is None:
            out.append(f"I1 {job_id}: dead without a reason")
    return out


def i2_no_overlap(
    runs: Iterable[Execution], faults: Iterable[Mapping[str, object]],
    fenced: Collection[int] = (),
) -> list[str]:  # fmt: skip
    """No two runs of one job overlap. A run its process died under ends when the
    test killed that process; a run in a process the test froze or cut off past its lease
    (``fenced``) held no live lease any more and is left out, as its completion
    is fenced off (scenario 4 proves that)."""
    killed_at: dict[object, float] = {}
    for f in faults:
        if f.get("what") in KILLS:
            killed_at.setdefault(f["pid"], float(f["at"]))  # type: ignore[arg-type]
    by_job: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for r in runs:
        if r.pid in fenced:
            continue
        end = r.end if r.end is not None else killed_at.get(r.pid, time.time())
        by_job[r.job_id].append((r.start, end, r.pid))
    out: list[str] = []
    for job_id, spans in by_job.items():
        spans.sort()
        for (_s1, e1, p1), (s2, _e2, p2) in itertools.pairwise(spans):
            if s2 < e1:
                out.append(
                    f"I2 {job_id}: run in pid {p2} began {e1 - s2:.3f}s before pid {p1}'s ended"
                )
    return out


def i3_dead_letters(jobs: Mapping[str, Job]) -> list[str]:
    """A dead job keeps what an operator needs to redrive or debug it."""
    out: list[str] = []
    for job_id, job in jobs.items():
        if job.state is not State.DEAD:
            continue
        if job.payload is None or job.error is None or not job.error.message:
            out.append(f"I3 {job_id}: dead without its payload or error")
        elif job.attempts < 1 and job.error.type != "DecodeError":
            out.append(f"I3 {job_id}: dead with attempt count {job.attempts}")
    return out


async def final_jobs(app: App, job_ids: Iterable[str], timeout: float = 60.0) -> dict[str, Job]:
    return {job_id: await wait_for_job(app, job_id, timeout=timeout) for job_id in job_ids}


async def i4_serving(app: App, task: str, timeout: float = 30.0) -> list[str]:
    """The workers still take new work after the faults."""
    from tests.faults.workers import enqueue

    [job_id] = await enqueue(app, task, 1)
    done = await wait_for_job(app, job_id, timeout=timeout)
    return [] if done.state is State.SUCCEEDED else [f"I4: a new job ended {done.state}"]


async def check(
    app: App, ledger: Ledger, job_ids: Collection[str], *,
    allowed: Collection[State] = (State.SUCCEEDED, State.DEAD), fenced: Collection[int] = (),
    serving_task: str | None = "f.record", timeout: float = 60.0,
) -> list[str]:  # fmt: skip
    """I1-I4 in one call; ``serving_task`` None skips I4 (no worker left on purpose)."""
    jobs = await final_jobs(app, job_ids, timeout)
    runs = ledger.executions()
    problems = i1_terminal(jobs, runs, allowed)
    problems += i2_no_overlap(runs, ledger.faults(), fenced)
    problems += i3_dead_letters(jobs)
    if serving_task is not None:
        problems += await i4_serving(app, serving_task)
    return problems
