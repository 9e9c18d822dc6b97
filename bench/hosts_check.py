"""The proof after a drain of ``bench/hosts.py``: invariants I1-I3 of the fault
catalogue (docs/reliability.md), from the workers' ledgers and the backend's
own record, for a backlog too big to hold one ``Job`` per id in a test.

- I1: every enqueued job ran (a ledger line), nothing else ran, the backend
  counts the queue's jobs as all succeeded, and each job it lists is
  succeeded with the attempt count of its last run in the ledger;
- I2: the runs of a job that ran more than once never overlap in time;
- I3: a dead job keeps its payload and error (there should be none).

Violations are counted per kind, with a few examples each: a broken run
must say how broken without printing a million lines.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from hosts_app import Run

from offload import Job, State

EXAMPLES = 5


@dataclass
class Violations:
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        if self.counts[kind] < EXAMPLES:
            self.examples.append(f"{kind} {text}")
        self.counts[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def by_job(runs: Iterable[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        out[run.job_id].append(run)
    return out


def check_ledger(enqueued: Collection[str], runs: Mapping[str, list[Run]], v: Violations) -> None:
    for job_id in enqueued:
        if job_id not in runs:
            v.add("I1", f"{job_id}: enqueued, never ran")
    for job_id, spans in runs.items():
        if job_id not in enqueued:
            v.add("I1", f"{job_id}: ran, never enqueued")
        if len(spans) > 1:
            check_overlap(job_id, spans, v)


def check_overlap(job_id: str, spans: list[Run], v: Violations) -> None:
    ordered = sorted(spans, key=lambda r: r.start)
    for first, second in itertools.pairwise(ordered):
        if second.start < first.end:
            gap = first.end - second.start
            v.add("I2", f"{job_id}: attempt {second.attempt} in pid {second.pid} began "
                        f"{gap:.6f}s before pid {first.pid}'s ended")  # fmt: skip


def check_counts(counts: Mapping[tuple[str, State], int], queue: str, n: int,
                 v: Violations) -> None:  # fmt: skip
    """The backend's own per-state totals: all ``n`` succeeded, nothing else."""
    mine = {state: c for (q, state), c in counts.items() if q == queue and c}
    if mine != {State.SUCCEEDED: n}:
        found = dict(sorted(mine.items()))
        v.add("I1", f"job_counts of the queue: {found}, expected {n} succeeded")


def check_jobs(jobs: Iterable[Job], runs: Mapping[str, list[Run]], v: Violations) -> int:
    """Each job as the backend lists it against its ledger; returns how many."""
    seen = 0
    for job in jobs:
        seen += 1
        ran = runs.get(job.id, [])
        last = max((r.attempt for r in ran), default=0)
        if job.state is not State.SUCCEEDED:
            v.add("I1", f"{job.id}: {job.state} in the backend")
            if job.state is State.DEAD and (job.payload is None or job.error is None):
                v.add("I3", f"{job.id}: dead without its payload or error")
        elif job.attempts != last:
            v.add("I1", f"{job.id}: {job.attempts} attempts in the backend, last run {last}")
    return seen


def reruns(runs: Mapping[str, list[Run]]) -> int:
    """Jobs that ran more than once: allowed (at-least-once), never overlapping."""
    return sum(1 for spans in runs.values() if len(spans) > 1)
